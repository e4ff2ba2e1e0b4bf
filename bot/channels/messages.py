"""The channel-independent bot message and its plain JSON rendering.

Rasa hands an output channel one dict per bot turn (text, buttons, quick
replies, custom payload, image). Web channels get it as one JSON object, so a
knowledge-base answer's text and its `custom` payload (article id, score) travel
together instead of as two separate messages.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel

MAX_TEXT_CHARS = 4000
# Direction overrides and isolates, zero-width space and BOM: invisible, and they change
# what the embedding sees (zero-width joiner stays: emoji sequences need it).
_INVISIBLE = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200B, 0xFEFF])


def clean_text(text: str) -> str:
    """A customer's text as the bot reads it: NFC, without control or invisible characters
    (tabs become spaces, line breaks stay), trimmed. "" means there is nothing to read."""
    text = unicodedata.normalize("NFC", text).replace("\t", " ").translate(_INVISIBLE)
    return "".join(c for c in text if c == "\n" or unicodedata.category(c) != "Cc").strip()


def chat_message(recipient_id: str, message: dict[str, Any]) -> dict[str, Any]:
    """Keep what a chat client renders, drop Rasa's internals (utter_action, etc.)."""
    out: dict[str, Any] = {"recipient_id": recipient_id}
    if message.get("text"):
        out["text"] = message["text"]
    buttons = message.get("buttons") or message.get("quick_replies")
    if buttons:
        out["buttons"] = [{"title": b["title"], "payload": b["payload"]} for b in buttons]
    for key in ("custom", "image", "attachment"):
        if message.get(key):
            out[key] = message[key]
    return out


class JsonCollectingOutput(CollectingOutputChannel):
    """Collects each bot turn as one JSON object (used by the REST channel)."""

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        await self._persist_message(chat_message(recipient_id, message))
