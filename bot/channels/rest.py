"""REST channel: POST /webhooks/rest/webhook {"sender": ..., "message": ...}.

Like Rasa's own, but a malformed request gets 400 (Rasa's crashes into a 500),
an oversized one 413, a conversation over the rate limit 429 and a message that could
not be kept because Redis is down 503 (each with the bot's polite answer in the body),
and each bot turn is one JSON object with its
custom payload.
The conversation id is "rest:<sender>": a REST client names its own conversations
and can never write into a web chat, Messenger or WhatsApp customer's conversation.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.fail_open import handle_message
from bot.channels.messages import MAX_TEXT_CHARS, JsonCollectingOutput, clean_text

logger = logging.getLogger(__name__)
MAX_SENDER_CHARS = 128
REST_PREFIX = "rest:"
STATUS = {"handled": 200, "rate_limited": 429, "unavailable": 503}


class RestChannel(InputChannel):
    @classmethod
    def name(cls) -> str:
        return "rest"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint("rest_webhook", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            try:
                body = request.json
            except Exception:  # sanic raises InvalidUsage on bad JSON
                body = None
            if not isinstance(body, dict):
                return response.json({"error": "body must be a JSON object"}, status=400)
            sender, text, metadata = body.get("sender"), body.get("message"), body.get("metadata")
            if not isinstance(sender, str) or not sender or len(sender) > MAX_SENDER_CHARS:
                return response.json({"error": f"'sender' must be a string of 1-{MAX_SENDER_CHARS} chars"}, 400)
            if not isinstance(text, str):
                return response.json({"error": "'message' must be a string"}, status=400)
            if len(text) > MAX_TEXT_CHARS:
                return response.json({"error": f"'message' is longer than {MAX_TEXT_CHARS} characters"}, 413)
            if metadata is not None and not isinstance(metadata, dict):
                return response.json({"error": "'metadata' must be an object"}, status=400)
            text = clean_text(text)
            if not text:
                return response.json({"error": "'message' has no text (only spaces or control characters)"}, 400)
            collector = JsonCollectingOutput()
            conversation_id = f"{REST_PREFIX}{sender}"
            message = UserMessage(text, collector, conversation_id, input_channel=self.name(), metadata=metadata)
            outcome = await handle_message(on_new_message, message)
            return response.json(collector.messages, status=STATUS[outcome])

        return webhook
