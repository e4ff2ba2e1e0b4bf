"""Agent accounts and login sessions, in Redis.

Passwords are hashed with scrypt (RFC 7914, Python's hashlib) and a random salt.
A session is a random token given to the browser as an HttpOnly cookie (or to API
clients as a Bearer token); Redis keeps only its SHA-256, with an expiry.

Keys (each starts with "<prefix>:"):
  agent:<username>            JSON of the Account (with the password hash)
  agents                      set of usernames
  session:<sha256 of token>   username, expiring
  login-failures:<username>   failed logins in the current window, expiring
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import asdict, dataclass
from typing import Literal

from redis.asyncio import Redis

Role = Literal["agent", "admin"]
ROLES = ("agent", "admin")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")
MIN_PASSWORD = 10
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MAX_FAILURES, FAILURE_WINDOW_S = 10, 15 * 60


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    encode = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${encode(salt).decode()}${encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    expected = base64.b64decode(digest)
    given = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p))
    return hmac.compare_digest(given, expected)


@dataclass
class Account:
    username: str
    display_name: str
    role: str
    password_hash: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def public(self) -> dict[str, str]:
        return {"username": self.username, "display_name": self.display_name, "role": self.role}


class AccountError(ValueError):
    """A username, password or role that cannot be accepted."""


class Accounts:
    def __init__(self, redis: Redis, prefix: str, session_ttl_s: int) -> None:
        self.redis = redis
        self.prefix = prefix
        self.session_ttl_s = session_ttl_s

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    async def create(self, username: str, password: str, role: str = "agent", display_name: str = "") -> Account:
        username = username.strip().lower()
        if not USERNAME.match(username):
            raise AccountError("username: 2-32 characters, lower-case letters, digits, '.', '_' or '-'")
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"password: at least {MIN_PASSWORD} characters")
        if role not in ROLES:
            raise AccountError(f"role: one of {', '.join(ROLES)}")
        account = Account(username, display_name.strip() or username, role, hash_password(password))
        created = await self.redis.set(self._key("agent", username), json.dumps(asdict(account)), nx=True)
        if not created:
            raise AccountError(f"username {username!r} is taken")
        await self.redis.sadd(self._key("agents"), username)
        return account

    async def get(self, username: str) -> Account | None:
        raw = await self.redis.get(self._key("agent", username))
        return Account(**json.loads(raw)) if raw else None

    async def all(self) -> list[Account]:
        found = [await self.get(name) for name in sorted(await self.redis.smembers(self._key("agents")))]
        return [a for a in found if a is not None]

    async def authenticate(self, username: str, password: str) -> Account | None:
        """The account, if the password is right; None otherwise. Raises AccountError when locked out."""
        username = username.strip().lower()
        failures_key = self._key("login-failures", username)
        if int(await self.redis.get(failures_key) or 0) >= MAX_FAILURES:
            raise AccountError("too many failed logins; try again in 15 minutes")
        account = await self.get(username)
        if account and verify_password(password, account.password_hash):
            await self.redis.delete(failures_key)
            return account
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(failures_key)
            pipe.expire(failures_key, FAILURE_WINDOW_S)
            await pipe.execute()
        return None

    @staticmethod
    def _token_key(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    async def start_session(self, account: Account) -> str:
        token = secrets.token_urlsafe(32)
        await self.redis.set(self._key("session", self._token_key(token)), account.username, ex=self.session_ttl_s)
        return token

    async def session(self, token: str) -> Account | None:
        if not token or len(token) > 128:
            return None
        username = await self.redis.get(self._key("session", self._token_key(token)))
        return await self.get(username) if username else None

    async def end_session(self, token: str) -> None:
        await self.redis.delete(self._key("session", self._token_key(token)))
