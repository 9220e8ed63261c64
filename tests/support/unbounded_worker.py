"""The negative control of the failover test: ``povhub worker`` with kafka-python's own transaction
calls, which wait without a bound (what issue 14 found: a worker blocked for good in
``commit_transaction`` after its transaction coordinator was killed). The failover test must notice."""

from __future__ import annotations

import sys
from pathlib import Path

from kafka import KafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.hooked_worker import run  # noqa: E402
from pipeline.bounded_producer import BoundedProducer  # noqa: E402

BoundedProducer.commit_transaction = KafkaProducer.commit_transaction
BoundedProducer.send_offsets_to_transaction = KafkaProducer.send_offsets_to_transaction
BoundedProducer.abort_transaction = KafkaProducer.abort_transaction

if __name__ == "__main__":
    sys.exit(run())
