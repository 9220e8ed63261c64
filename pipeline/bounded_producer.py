"""kafka-python's transactional producer with every transaction call bounded, as the Java client's are.

kafka-python 3.0.12 bounds ``init_transactions`` by ``max_block_ms`` but waits without any bound in
``send_offsets_to_transaction``, ``commit_transaction`` and ``abort_transaction``; its transaction
manager does not look up a coordinator again once the one it knew died, so a kill -9 of that broker
left a worker blocked there forever (issue 14; aiokafka issues 1134 and 1145 are the same class of
bug). The Java client bounds these calls by ``max.block.ms`` (KAFKA-7763, KAFKA-10309); so does
this subclass, and it also gives up when the watchdog sets ``abandon``. A call that timed out leaves
the producer unusable for us: the caller drops it and a new producer with the same transactional id
fences (aborts) the open transaction.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError

from pipeline.liveness import Abandoned

_SLICE_MS = 250  # how often a wait looks at the watchdog's flag


class BoundedProducer(KafkaProducer):
    def __init__(self, abandon: threading.Event | None = None, **configs: Any) -> None:
        super().__init__(**configs)
        self._abandon = abandon or threading.Event()

    def _wait(self, result: Any, what: str) -> None:
        bound_s = self.config["max_block_ms"] / 1000
        deadline = time.monotonic() + bound_s
        while not result.wait(timeout_ms=_SLICE_MS):  # raises the call's own error, if any
            if self._abandon.is_set():
                raise Abandoned(f"{what}: abandoned by the watchdog")
            if time.monotonic() > deadline:
                raise KafkaTimeoutError(f"{what} did not complete within {bound_s:.0f} s")

    def send_offsets_to_transaction(self, offsets: Any, group_metadata: Any) -> None:
        result = self._transaction_manager.send_offsets_to_transaction(offsets, group_metadata)
        self._sender.wakeup()
        self._wait(result, "sending the consumed offsets to the transaction")

    def commit_transaction(self) -> None:
        result = self._transaction_manager.begin_commit()
        self._sender.wakeup()
        self._wait(result, "committing the transaction")

    def abort_transaction(self) -> None:
        result = self._transaction_manager.begin_abort()
        self._sender.wakeup()
        self._wait(result, "aborting the transaction")
