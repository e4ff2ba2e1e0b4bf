"""action_forget_me: the customer asked us to forget them, and confirmed."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import quote

import aiohttp
from rasa_sdk import Action, Tracker
from rasa_sdk.events import Restarted
from rasa_sdk.executor import CollectingDispatcher

from actions.handoff import SETTINGS, profiles, redis
from bot.forget import erase_conversations
from bot.messages import message

logger = logging.getLogger(__name__)
_pending: set[asyncio.Task] = set()


async def erase_after_turn(conversation_ids: list[str], current: str) -> None:
    """Rasa saves this turn after the action returns: empty the current transcript once it has
    (Rasa's API waits for the conversation's lock), then delete everything else."""
    url = f"{SETTINGS.rasa_url}/conversations/{quote(current, safe='')}/tracker/events"
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.put(
                url, params={"token": SETTINGS.rasa_token}, json=[{"event": "session_started"}], timeout=60
            ) as response,
        ):
            if response.status != 200:
                logger.error("could not empty a forgotten conversation's tracker: HTTP %s", response.status)
        await erase_conversations(redis(), SETTINGS.redis_prefix, [c for c in conversation_ids if c != current])
        await erase_conversations(redis(), SETTINGS.redis_prefix, [current])
    except Exception:
        logger.exception("erasing a forgotten customer's conversations failed")


class ActionForgetMe(Action):
    def name(self) -> str:
        return "action_forget_me"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict]:
        language = tracker.get_slot("language") or "en"
        conversations = await profiles().forget(tracker.sender_id)
        task = asyncio.get_running_loop().create_task(erase_after_turn(conversations, tracker.sender_id))
        _pending.add(task)
        task.add_done_callback(_pending.discard)
        dispatcher.utter_message(text=message("forget_done", language))
        return [Restarted()]
