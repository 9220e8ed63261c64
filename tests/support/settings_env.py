"""Settings as a worker started with `env` would load them, built in the test process."""

from __future__ import annotations

import os

from povhub.settings import Settings, load_settings


def settings_for(env: dict[str, str]) -> Settings:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return load_settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)
