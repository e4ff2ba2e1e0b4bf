"""Web chat channel over socket.io, for the page the agent service serves.

Compared with Rasa's SocketIOInput:
- a session id comes with an HMAC token; a socket joins a conversation only with
  the token the server issued for it, so knowing an id is not enough;
- the sender of a message is the session this socket was confirmed for, never an
  id the client puts in the message;
- each bot turn is emitted as one `bot_uttered` object (text, buttons, custom
  payload together); Rasa's version passes custom payloads to `emit` as keyword
  arguments and fails on ours.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncRedisManager, AsyncServer

from bot.channels.fail_open import handle_message
from bot.channels.messages import MAX_TEXT_CHARS, chat_message, clean_text
from bot.session_tokens import sign_session, valid_session

logger = logging.getLogger(__name__)
USER_EVENT, BOT_EVENT = "user_uttered", "bot_uttered"


class WebChatOutput(OutputChannel):
    @classmethod
    def name(cls) -> str:
        return "webchat"

    def __init__(self, sio: AsyncServer) -> None:
        self.sio = sio

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        await self.sio.emit(BOT_EVENT, chat_message(recipient_id, message), room=recipient_id)

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        await self.send_response(recipient_id, {"text": text})


class _SocketBlueprint(Blueprint):
    def __init__(self, sio: AsyncServer, path: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ctx.sio, self.ctx.path = sio, path

    def register(self, app: Sanic, options: dict[str, Any]) -> None:
        self.ctx.sio.attach(app, self.ctx.path)
        super().register(app, options)


class WebChatInput(InputChannel):
    @classmethod
    def name(cls) -> str:
        return "webchat"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        credentials = credentials or {}
        secret = credentials.get("session_secret")
        if not secret:
            raise ValueError(
                "webchat: 'session_secret' is not set in credentials.yml (the launcher sets "
                "WEBCHAT_SESSION_SECRET); it signs web chat session ids"
            )
        return cls(
            str(secret),
            credentials.get("socketio_path", "/socket.io"),
            credentials.get("cors_allowed_origins", "*"),
            credentials.get("redis_url") or None,
            credentials.get("redis_channel") or "supportbot",
        )

    def __init__(
        self,
        session_secret: str,
        socketio_path: str = "/socket.io",
        cors_allowed_origins: str | list[str] = "*",
        redis_url: str | None = None,
        redis_channel: str = "supportbot",
    ) -> None:
        self.session_secret = session_secret
        self.socketio_path = socketio_path
        self.cors_allowed_origins = cors_allowed_origins
        self.redis_url = redis_url
        self.redis_channel = redis_channel
        self.sio: AsyncServer | None = None

    def get_output_channel(self) -> OutputChannel | None:
        # Used for messages Rasa sends outside a user turn: agent replies.
        return WebChatOutput(self.sio) if self.sio else None

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        manager = (
            AsyncRedisManager(self.redis_url, channel=f"{self.redis_channel}:socketio") if self.redis_url else None
        )
        sio = AsyncServer(async_mode="sanic", cors_allowed_origins=self.cors_allowed_origins, client_manager=manager)
        self.sio = sio
        webhook = _SocketBlueprint(sio, self.socketio_path, "webchat_webhook", __name__)

        if manager is not None:

            @webhook.listener("before_server_start")
            async def own_host_id(*_: Any) -> None:
                # Sanic forks its workers (SANIC_WORKERS) after this manager was made, so they would
                # share its host id, and each would drop the others' messages from Redis as its own
                # echo: an agent's reply sent by one worker never reached a customer on another.
                manager.host_id = uuid.uuid4().hex

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @sio.on("session_request")
        async def session_request(sid: str, data: Any) -> None:
            data = data if isinstance(data, dict) else {}
            session_id, token = data.get("session_id"), data.get("token")
            if not valid_session(self.session_secret, session_id, token):
                session_id = secrets.token_hex(16)  # unknown or forged: a fresh conversation
                token = sign_session(self.session_secret, session_id)
            await sio.save_session(sid, {"session_id": session_id})
            await sio.enter_room(sid, session_id)
            await sio.emit("session_confirm", {"session_id": session_id, "token": token}, room=sid)

        @sio.on(USER_EVENT)
        async def user_uttered(sid: str, data: Any) -> None:
            session = await sio.get_session(sid)
            session_id = session.get("session_id")
            text = data.get("message") if isinstance(data, dict) else None
            if not session_id or not isinstance(text, str):
                await sio.emit("error_message", {"error": "send session_request first, then {message}"}, room=sid)
                return
            if len(text) > MAX_TEXT_CHARS:
                await sio.emit("error_message", {"error": f"message longer than {MAX_TEXT_CHARS} chars"}, room=sid)
                return
            text = clean_text(text)
            if not text:
                await sio.emit("error_message", {"error": "the message has no text"}, room=sid)
                return
            metadata = data.get("metadata")
            await handle_message(
                on_new_message,
                UserMessage(
                    text,
                    WebChatOutput(sio),
                    session_id,
                    input_channel=self.name(),
                    metadata=metadata if isinstance(metadata, dict) else None,
                ),
            )

        return webhook
