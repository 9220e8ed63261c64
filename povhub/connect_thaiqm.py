"""``povhub connect thaiqm``: poll the Thai QM API, or import Thai QM export files."""

from __future__ import annotations

import sys
from pathlib import Path

from connectors.pseudonym import Pseudonymiser
from connectors.publisher import Publisher
from connectors.thaiqm.client import ThaiQmApiError, ThaiQmClient, ThaiQmUnavailable
from connectors.thaiqm.cursor import CursorStore
from connectors.thaiqm.exports import ExportError, import_export
from connectors.thaiqm.intake import Intake
from connectors.thaiqm.poller import Poller
from povhub.settings import Settings, SettingsError
from povhub.wiring import codec_from, reachable_kafka, require_secret


def _publisher(s: Settings) -> Publisher:
    return Publisher(reachable_kafka(s), source="thaiqm", codec=codec_from(s), topics=s.kafka.topics,
                     client_id="povhub-thaiqm")


def build_poller(s: Settings, api_url: str, intake: Intake) -> Poller:
    client = ThaiQmClient(api_url, s.thaiqm.api_token, timeout_s=s.thaiqm.timeout_s, rate_limit=s.thaiqm.rate_limit)
    cursors = CursorStore(s.hub.data_dir / "thaiqm", api_url, s.kafka.topic_prefix)
    return Poller(client, intake, cursors, page_size=s.thaiqm.page_size)


def run_thaiqm_poll(s: Settings, api_url: str | None, once: bool) -> int:
    api_url = api_url or s.thaiqm.api_url
    if not api_url:
        raise SettingsError("bad setting THAIQM_API_URL: required to poll Thai QM (not set; or pass --api URL)")
    pseudonyms = Pseudonymiser(require_secret(s))
    with _publisher(s) as publisher:
        intake = Intake(publisher, pseudonyms)
        poller = build_poller(s, api_url, intake)
        try:
            if once:
                poller.drain()
            else:
                poller.run_forever(s.thaiqm.poll_seconds)
        except (ThaiQmApiError, ThaiQmUnavailable) as e:
            print(f"povhub: {e} (the cursor is where the last acknowledged page left it)", file=sys.stderr)
            return 1
        finally:
            print("\n".join([f"thaiqm: {poller.pages} pages", *intake.lines()]))
    return 0


def run_thaiqm_import(s: Settings, files: list[Path]) -> int:
    missing = [f for f in files if not f.is_file()]
    if missing:
        print(f"povhub: no such file: {missing[0]}", file=sys.stderr)
        return 2
    pseudonyms = Pseudonymiser(require_secret(s))
    with _publisher(s) as publisher:
        for f in files:
            intake = Intake(publisher, pseudonyms)
            try:
                import_export(f, intake)
            except ExportError as e:
                print(f"povhub: {e}", file=sys.stderr)
                return 2
            print("\n".join([f"{f.name}:", *intake.lines()]))
    return 0
