"""Our Redis tracker store against Rasa's (real Redis): the same steps give the same stored
trackers, the same retrieved events and the same events to the event broker."""

from __future__ import annotations

import json
import secrets
from typing import Any
from urllib.parse import urlparse

import redis
from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import TrackerStore
from rasa.shared.core.constants import ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, Event, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from bot.settings import Settings
from bot.tracker_store import RedisTrackerStore

SENDER = "rest:tracker-store-test"


class RecordingBroker(EventBroker):
    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []

    def publish(self, event: dict[str, Any]) -> None:
        self.published.append(event)


def make_store(store_type: str, prefix: str, broker: EventBroker) -> TrackerStore:
    url = urlparse(Settings.from_env().redis_url)
    endpoint = EndpointConfig(
        url=url.hostname or "127.0.0.1",
        type=store_type,
        port=url.port or 6379,
        db=int((url.path or "/0").lstrip("/") or 0),
        key_prefix=prefix,
    )
    return TrackerStore.create(endpoint, Domain.empty(), broker)  # as Rasa builds it from endpoints.yml


def session(start: float) -> list[Event]:
    return [
        ActionExecuted(ACTION_SESSION_START_NAME, timestamp=start),
        SessionStarted(timestamp=start + 1),
        ActionExecuted(ACTION_LISTEN_NAME, timestamp=start + 2),
    ]


def turn(text: str, at: float) -> list[Event]:
    return [
        UserUttered(text, {"name": "greet", "confidence": 1.0}, timestamp=at),
        SlotSet("language", "en", timestamp=at + 0.1),
        BotUttered(f"answer to {text}", timestamp=at + 0.2),
        ActionExecuted(ACTION_LISTEN_NAME, timestamp=at + 0.3),
    ]


async def play(store: TrackerStore, client: redis.Redis, key: str) -> list[Any]:
    """A conversation over two sessions, and a save of a tracker that does not continue the stored one."""
    seen: list[Any] = []

    async def record() -> None:
        retrieved, full = await store.retrieve(SENDER), await store.retrieve_full_tracker(SENDER)
        seen.append((client.get(key), [e.as_dict() for e in retrieved.events], [e.as_dict() for e in full.events]))

    # as Rasa starts a conversation: the session's metadata slot is stored before the session starts
    first = [SlotSet("session_started_metadata", {"language": "en"}, timestamp=99), *session(100)]
    await store.save(DialogueStateTracker.from_events(SENDER, first))
    await record()
    for text, at in (("hi", 110), ("where is my parcel", 120)):
        tracker = await store.retrieve(SENDER)
        for event in turn(text, at):
            tracker.update(event)
        await store.save(tracker)
        await record()
    tracker = await store.retrieve(SENDER)  # a second session: retrieve returns only that one
    for event in session(200) + turn("hello again", 210):
        tracker.update(event)
    await store.save(tracker)
    await record()
    tracker = await store.retrieve(SENDER)
    for event in turn("and returns?", 220):
        tracker.update(event)
    await store.save(tracker)
    await record()
    # written elsewhere in the meantime: the stored events are not the start of this tracker
    await store.save(DialogueStateTracker.from_events(SENDER, session(200) + turn("late", 215)))
    await record()
    return seen


async def test_same_steps_give_what_rasas_redis_store_gives() -> None:
    client = redis.Redis.from_url(Settings.from_env().redis_url, decode_responses=True)
    ours_prefix, rasas_prefix = "trackerours" + secrets.token_hex(3), "trackerrasa" + secrets.token_hex(3)
    ours_broker, rasas_broker = RecordingBroker(), RecordingBroker()
    ours = make_store("bot.tracker_store.RedisTrackerStore", ours_prefix, ours_broker)
    rasas = make_store("redis", rasas_prefix, rasas_broker)
    assert type(ours) is RedisTrackerStore
    try:
        ours_seen = await play(ours, client, f"{ours_prefix}:tracker:{SENDER}")
        rasas_seen = await play(rasas, client, f"{rasas_prefix}:tracker:{SENDER}")
    finally:
        client.delete(f"{ours_prefix}:tracker:{SENDER}", f"{rasas_prefix}:tracker:{SENDER}")
        client.close()

    assert ours_seen == rasas_seen
    assert ours_broker.published == rasas_broker.published
    # and what that is: every event once; the second session's retrieve holds only it
    texts = [e.get("text") for e in ours_broker.published if e["event"] == "user"]
    assert texts == ["hi", "where is my parcel", "hello again", "and returns?"]  # Rasa streams no "late"
    _, last_session, full = ours_seen[-2]
    assert [e["event"] for e in last_session][:2] == ["action", "session_started"]
    assert len(full) > len(last_session)


async def test_a_write_by_another_process_between_read_and_save_is_merged_as_rasa_merges() -> None:
    """What a store read last is reused only while Redis still holds it."""
    client = redis.Redis.from_url(Settings.from_env().redis_url, decode_responses=True)
    results = []
    try:
        for store_type in ("bot.tracker_store.RedisTrackerStore", "redis"):
            prefix = "trackertwo" + secrets.token_hex(3)
            first, second = (make_store(store_type, prefix, RecordingBroker()) for _ in range(2))
            await first.save(DialogueStateTracker.from_events(SENDER, session(100)))
            mine, theirs = await first.retrieve(SENDER), await second.retrieve(SENDER)
            for event in turn("written by the other process", 110):
                theirs.update(event)
            await second.save(theirs)
            for event in turn("mine", 120):
                mine.update(event)
            await first.save(mine)
            stored = client.get(f"{prefix}:tracker:{SENDER}")
            client.delete(f"{prefix}:tracker:{SENDER}")
            events = DialogueStateTracker.from_dict(SENDER, json.loads(stored)["events"]).events
            results.append([e.as_dict() for e in events])
    finally:
        client.close()
    ours, rasas = results
    assert ours == rasas
    assert [e.get("text") for e in ours if e["event"] == "user"] == ["written by the other process", "mine"]
