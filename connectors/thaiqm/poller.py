"""The Thai QM poller: read each feed page by page from its cursor, publish, and only then move the cursor.

Per page: every item becomes an event or a dead letter, the producer is flushed (``flush`` raises
unless Kafka acknowledged all of them, acks=all) and only then the page's ``next`` position is
saved. A crash between the two re-reads that one page, which publishes the same event ids again
(at-least-once; consumers deduplicate by id); it never leaves a gap. Households are read before
problems so the membership a problem's person is matched through tends to be there first.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from connectors.thaiqm.client import Position, ThaiQmClient
from connectors.thaiqm.cursor import CursorStore
from connectors.thaiqm.intake import Intake, Location
from connectors.thaiqm.records import FEEDS, Feed
from schemas.metrics import CONNECTOR_CURSOR

log = logging.getLogger(__name__)


class Poller:
    def __init__(self, client: ThaiQmClient, intake: Intake, cursors: CursorStore, page_size: int = 200) -> None:
        self.client, self.intake, self.cursors = client, intake, cursors
        self.page_size = page_size
        self.pages = 0

    def drain(self, max_pages: int | None = None) -> bool:
        """Read every feed up to its current end; False if `max_pages` stopped it first."""
        for feed in FEEDS:
            position = self.cursors.get(feed)
            while True:
                if max_pages is not None and self.pages >= max_pages:
                    return False
                page = self.client.page(feed, position, self.page_size)
                for i, raw in enumerate(page.items):
                    self.intake.accept(feed, raw, Location(request=f"{page.request} item {i}"))
                self.intake.flush()
                self.pages += 1
                if page.next is not None:
                    position = page.next
                    self.cursors.save(feed, position)
                    _observe(feed, position)
                log.info("%s: page %d, %d items, has_more=%s", feed, self.pages, len(page.items), page.has_more)
                if not page.has_more:
                    break
        return True

    def run_forever(self, interval_s: float) -> None:
        while True:
            self.drain()
            time.sleep(interval_s)


def _observe(feed: Feed, position: Position) -> None:
    try:
        seconds = datetime.fromisoformat(position.updated_since).timestamp()
    except ValueError:  # the cursor stays opaque to the poller; only the metric needs a time
        return
    CONNECTOR_CURSOR.labels("thaiqm", feed).set(seconds)
