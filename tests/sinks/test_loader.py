import asyncio
from dataclasses import dataclass

import faust

from sinks.batch_insert import Backoff
from sinks.household_state import HOUSEHOLD_STATE
from sinks.loader import load_events, register_loader
from tests.sinks.helpers import FlakyClient, decode, encode, state_record

TOPIC = "povhub.household.state.v1"
FAST = Backoff(first=0.01, cap=0.05)


@dataclass
class Message:
    topic: str
    partition: int
    offset: int


@dataclass
class Event:
    """The two attributes of a faust event the loader reads."""

    value: bytes
    message: Message


def events(partition: int, first_offset: int, values: list[bytes]) -> list[Event]:
    return [Event(v, Message(TOPIC, partition, first_offset + i)) for i, v in enumerate(values)]


def test_bad_records_go_to_on_bad_and_the_rest_is_loaded(db):
    batch = events(0, 10, [encode(state_record(i)) for i in range(5)]) + events(
        1,
        70,
        [
            b"not a record",
            encode({"household_key": "00000000001"}),  # fields missing
            encode(state_record(8, failed_dimensions=["wealth"])),  # not a dimension
            encode(state_record(9, members=-1)),  # cannot be encoded as UInt16
            encode(state_record(10)),
        ],
    )
    bad = []

    def on_bad(event, error):
        bad.append(event.message.offset)

    asyncio.run(load_events(db, HOUSEHOLD_STATE, decode, batch, on_bad, backoff=FAST))
    assert bad == [70, 71, 72, 73]
    loaded = db.query("SELECT _partition, _offset FROM household_state ORDER BY _offset").result_rows
    assert loaded == [(0, offset) for offset in range(10, 15)] + [(1, 74)]


def test_async_on_bad_is_awaited(db):
    handled = []

    async def to_dead_letters(event, error):
        await asyncio.sleep(0)
        handled.append(type(error).__name__)

    asyncio.run(load_events(db, HOUSEHOLD_STATE, decode, events(0, 0, [b"junk"]), to_dead_letters))
    assert handled == ["UnpicklingError"]


def loader_agent(client, on_bad, offsets=None):
    # The broker is never contacted: test_context feeds the agent through a local channel
    app = faust.App("povhub-test-loader", broker="kafka://127.0.0.1:1", store="memory://")
    return register_loader(
        app, TOPIC, client, HOUSEHOLD_STATE, decode, on_bad, batch_size=4, batch_seconds=0.05, backoff=FAST,
        offsets=offsets,
    )


class RecordingOffsets:
    """Admits every other event (as a ledger drops a hole) and records the commits."""

    def __init__(self, db):
        self.db, self.committed, self.rows_at_commit = db, [], []

    async def admit(self, events):
        return [e for e in events if e.message.offset % 2 == 0]

    async def commit(self, events):
        self.rows_at_commit.append(self.db.command("SELECT count() FROM household_state"))
        self.committed += [e.message.offset for e in events]


def test_agent_with_offsets_loads_what_they_admit_and_commits_it_after_the_insert(db):
    flaky = FlakyClient(db, down=True)
    offsets = RecordingOffsets(db)
    agent = loader_agent(flaky, lambda event, error: None, offsets)

    async def scenario():
        async with agent.test_context() as test_agent:
            sent = [await test_agent.put(encode(state_record(i)), wait=False) for i in range(6)]
            await wait_for(lambda: flaky.attempts >= 3)
            assert offsets.committed == []
            flaky.down = False
            await wait_for(lambda: len(offsets.committed) == 3)
        return sent

    sent = asyncio.run(scenario())
    assert sorted(offsets.committed) == [e.message.offset for e in sent if e.message.offset % 2 == 0]
    assert offsets.rows_at_commit[0] > 0 and not any(e.message.acked for e in sent)
    assert db.command("SELECT count() FROM household_state") == 3


def test_agent_acks_only_after_the_insert(db):
    flaky = FlakyClient(db, down=True)
    bad = []
    agent = loader_agent(flaky, lambda event, error: bad.append(event))

    async def scenario():
        async with agent.test_context() as test_agent:
            sent = [await test_agent.put(encode(state_record(i)), partition=i % 2, wait=False) for i in range(6)]
            sent.append(await test_agent.put(b"junk", partition=0, wait=False))
            await wait_for(lambda: flaky.attempts >= 3)
            assert not any(event.message.acked for event in sent)
            flaky.down = False
            await wait_for(lambda: all(event.message.acked for event in sent))
        return sent

    sent = asyncio.run(scenario())
    assert db.command("SELECT count() FROM household_state") == 6
    assert [event.message.offset for event in bad] == [sent[-1].message.offset]


def test_agent_stopped_during_an_outage_acks_nothing(db):
    # With take()/take_events() this fails: closing their generator acks the held batch
    flaky = FlakyClient(db, down=True)
    agent = loader_agent(flaky, lambda event, error: None)

    async def scenario():
        async with agent.test_context() as test_agent:
            sent = [await test_agent.put(encode(state_record(i)), wait=False) for i in range(3)]
            await wait_for(lambda: flaky.attempts >= 2)
        return sent

    sent = asyncio.run(scenario())
    assert not any(event.message.acked for event in sent)
    assert db.command("SELECT count() FROM household_state") == 0


async def wait_for(condition, timeout: float = 10.0) -> None:
    async def poll():
        while not condition():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)
