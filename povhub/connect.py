"""``povhub connect``: run a connector against the configured Kafka."""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from connectors.pseudonym import Pseudonymiser
from connectors.publisher import Publisher
from connectors.tpmap.close import CloseSummary, close_year
from connectors.tpmap.columns import ExportError
from connectors.tpmap.files import check_export, estimate_rows
from connectors.tpmap.importer import PRODUCER_CONFIG, ImportSummary, import_tpmap
from connectors.tpmap.state import TpmapState
from povhub.settings import Settings
from povhub.wiring import codec_from, reachable_kafka, require_secret
from schemas.topics import TPMAP_HOUSEHOLD


def tpmap_state(s: Settings) -> TpmapState:
    # per topic: the same file imported into another deployment (prefix) is another import
    return TpmapState(s.hub.data_dir / "tpmap" / s.kafka.topics.name(TPMAP_HOUSEHOLD))


def _progress_bar(path: Path, quiet: bool) -> tqdm:
    return tqdm(total=estimate_rows(path), desc=path.name, unit=" rows", unit_scale=True, file=sys.stderr,
                disable=quiet or not sys.stderr.isatty())


def check_exports(files: list[Path]) -> None:
    """Raise ExportError naming the first file that would be refused (its header only is read)."""
    for f in files:
        try:
            check_export(f)
        except ExportError as e:
            raise ExportError(f"{f}: {e}") from None


def import_files(bootstrap: str, s: Settings, secret: str, files: list[Path], state: TpmapState | None = None,
                 data_year: int | None = None, quiet: bool = True) -> list[ImportSummary]:
    """Import the files in order; raises ExportError before publishing anything if one is unreadable."""
    check_exports(files)
    pseudonyms = Pseudonymiser(secret)
    state = state or tpmap_state(s)
    summaries = []
    with Publisher(bootstrap, source="tpmap", codec=codec_from(s), topics=s.kafka.topics, **PRODUCER_CONFIG) as publisher:
        for f in files:
            with _progress_bar(f, quiet) as bar:
                summaries.append(import_tpmap(f, publisher, pseudonyms, state, bootstrap, data_year, bar.update))
    return summaries


def close_tpmap_year(bootstrap: str, s: Settings, year: int) -> CloseSummary:
    with Publisher(bootstrap, source="tpmap", codec=codec_from(s), topics=s.kafka.topics) as publisher:
        return close_year(year, publisher, tpmap_state(s), bootstrap)


def run_tpmap_import(s: Settings, files: list[Path], data_year: int | None = None,
                     close: int | None = None, quiet: bool = False) -> int:
    missing = [f for f in files if not f.is_file()]
    if missing:
        print(f"povhub: no such file: {missing[0]}", file=sys.stderr)
        return 2
    # what the command line can get wrong is said before Kafka is asked; failures: povhub/failures.py
    secret = require_secret(s) if files else ""
    check_exports(files)
    bootstrap = reachable_kafka(s)
    if files:
        for summary in import_files(bootstrap, s, secret, files, data_year=data_year, quiet=quiet):
            print("\n".join(summary.lines()))
    if close is not None:
        print("\n".join(close_tpmap_year(bootstrap, s, close).lines()))
    return 0
