"""Signed web chat session ids: the Rasa channel issues them, the agent service checks them."""

from __future__ import annotations

import hashlib
import hmac


def sign_session(secret: str, session_id: str) -> str:
    return hmac.new(secret.encode(), session_id.encode(), hashlib.sha256).hexdigest()


def valid_session(secret: str, session_id: object, token: object) -> bool:
    if not secret or not isinstance(session_id, str) or not isinstance(token, str) or not 8 <= len(session_id) <= 64:
        return False
    return hmac.compare_digest(sign_session(secret, session_id), token)
