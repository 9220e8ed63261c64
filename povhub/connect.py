"""``povhub connect``: run a connector against the configured Kafka."""

from __future__ import annotations

import sys
from pathlib import Path

from connectors.pseudonym import Pseudonymiser
from connectors.publisher import Publisher
from connectors.tpmap import ImportSummary, import_tpmap
from povhub.settings import Settings
from povhub.wiring import codec_from, require_bootstrap, require_secret


def import_files(bootstrap: str, s: Settings, secret: str, files: list[Path]) -> list[ImportSummary]:
    pseudonyms = Pseudonymiser(secret)
    with Publisher(bootstrap, source="tpmap", codec=codec_from(s), topics=s.topics) as publisher:
        return [import_tpmap(f, publisher, pseudonyms) for f in files]


def run_tpmap_import(s: Settings, files: list[Path]) -> int:
    missing = [f for f in files if not f.is_file()]
    if missing:
        print(f"povhub: no such file: {missing[0]}", file=sys.stderr)
        return 2
    for summary in import_files(require_bootstrap(s), s, require_secret(s), files):
        print("\n".join(summary.lines()))
    return 0
