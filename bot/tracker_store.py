"""Rasa's Redis tracker store, with the stored tracker read and replayed once per step.

Parsing a stored tracker replays every event into a new tracker. For each message Rasa's
store did that three times more than needed:
- `retrieve` parsed the tracker, then rebuilt it from its last session's events even
  when it has only one session;
- `save` parsed the stored tracker twice (once for the events to send to the event broker,
  once to merge with the new tracker), rebuilding its last session each time, and checked
  that the new tracker continues the stored one by replaying it (`travel_back_in_time`).
This store parses once per retrieve and slices and compares event lists instead; `save`
reuses what `retrieve` parsed when the stored JSON is still the one it read (another
process writes a conversation only under its lock, so in between it normally is).
Keys, the stored JSON and what the broker receives are Rasa's (tests/test_tracker_store.py).
Configured in endpoints.yml (`tracker_store: type: bot.tracker_store.RedisTrackerStore`).
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from typing import Any

from rasa.core import tracker_store
from rasa.shared.core.constants import ACTION_SESSION_START_NAME
from rasa.shared.core.events import ActionExecuted, Event, split_events
from rasa.shared.core.trackers import DialogueStateTracker

REMEMBERED = 1000  # conversations whose last read is kept for their save (a turn that failed never saves)


class RedisTrackerStore(tracker_store.RedisTrackerStore):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read: OrderedDict[str, tuple[str, list[Event]]] = OrderedDict()  # sender: (stored JSON, its events)

    async def _retrieve(self, sender_id: str, fetch_all_sessions: bool) -> DialogueStateTracker | None:
        stored = self.red.get(self.key_prefix + sender_id)
        if stored is None:
            return None
        tracker = self.deserialise_tracker(sender_id, stored)
        if tracker is None:
            return None
        self._read[sender_id] = (stored, list(tracker.events))  # a copy: the caller adds to the tracker
        self._read.move_to_end(sender_id)
        while len(self._read) > REMEMBERED:
            self._read.popitem(last=False)
        sessions = _sessions(tracker.events)
        if fetch_all_sessions or len(sessions) <= 1:
            return tracker
        return DialogueStateTracker.from_events(
            sender_id,
            sessions[-1],
            tracker.slots.values(),
            sender_source=tracker.sender_source,
            max_event_history=tracker._max_event_history,
        )

    async def save(self, tracker: DialogueStateTracker, timeout: float | None = None) -> None:
        key = self.key_prefix + tracker.sender_id
        stored = self.red.get(key)
        read = self._read.pop(tracker.sender_id, None)
        if stored is None:
            prior_events: list[Event] = []
        elif read is not None and read[0] == stored:
            prior_events = read[1]
        else:
            prior_events = list(self.deserialise_tracker(tracker.sender_id, stored).events)
        sessions = _sessions(prior_events)
        last_session = sessions[-1] if sessions else []  # what `retrieve` returned of the stored tracker
        if self.event_broker is not None:
            new_events = list(itertools.islice(tracker.events, len(last_session), None))
            await self._stream_new_events(self.event_broker, new_events, tracker.sender_id)
        if stored is not None and not _continues(prior_events, tracker):
            tracker = _merge_last_session(prior_events, last_session, tracker) or self._merge_trackers(
                self.deserialise_tracker(tracker.sender_id, stored), tracker
            )
        self.red.set(key, self.serialise_tracker(tracker), ex=timeout or self.record_exp)


def _sessions(events: Any) -> list[list[Event]]:
    """Events, one list per conversation session (as Rasa splits them)."""
    return split_events(events, ActionExecuted, {"action_name": ACTION_SESSION_START_NAME})


def _continues(prior_events: list[Event], tracker: DialogueStateTracker) -> bool:
    """Whether `tracker` starts with every stored event, in order: Rasa's merge keeps it as it is then."""
    if not prior_events:
        return True
    last = prior_events[-1].timestamp
    return list(itertools.takewhile(lambda e: e.timestamp <= last, tracker.events)) == prior_events


def _merge_last_session(
    prior_events: list[Event], last_session: list[Event], tracker: DialogueStateTracker
) -> DialogueStateTracker | None:
    """Rasa's merge when `tracker` is the stored last session with new events (as `retrieve` gave it).

    The usual case: Rasa stores the first message's `session_started_metadata` slot before
    the session starts, so every stored tracker has two "sessions". Rasa's merge compares
    each new event with every merged one; the result is the stored events followed by the
    new ones that are not among them. None when `tracker` is not that.
    """
    if list(itertools.islice(tracker.events, len(last_session))) != last_session:
        return None
    merged = tracker.init_copy()
    merged.update_with_events(prior_events, override_timestamp=False, domain=None)
    present = [event.as_dict() for event in prior_events]
    for event in itertools.islice(tracker.events, len(last_session), None):
        if event.as_dict() not in present:
            merged.update(event)
            present.append(event.as_dict())
    return merged
