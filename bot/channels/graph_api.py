"""Meta's Graph API, asynchronously: Messenger's Send API and WhatsApp's Cloud API share it.

Each call has a timeout; rate limits (429, or Meta's rate-limit error codes) and server
errors (5xx, timeouts, dropped connections) are retried with exponential backoff and
jitter, waiting at least what Retry-After asks. Other errors are not retried and raise
GraphApiError with Meta's own code and message. The token goes in the Authorization
header, never in a URL that could end up in a log.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import aiohttp

logger = logging.getLogger(__name__)
# Graph errors that mean "too many calls, try later" even when the HTTP status is 400
RATE_LIMIT_CODES = {4, 17, 32, 613, 130429}


class GraphApiError(RuntimeError):
    def __init__(self, status: int, message: str, code: int | None = None, subcode: int | None = None) -> None:
        super().__init__(f"Graph API answered {status}: {message} (code {code}, subcode {subcode})")
        self.status, self.code, self.subcode = status, code, subcode


def _retry_after(headers: Any) -> float | None:
    try:
        return max(0.0, float(headers.get("Retry-After", "")))
    except ValueError:
        return None  # an HTTP date: rare from Meta, use the backoff


class GraphClient:
    def __init__(
        self,
        base_url: str,
        access_token: str,
        *,
        timeout_s: float = 10.0,
        attempts: int = 4,
        backoff_s: float = 0.5,
        max_wait_s: float = 20.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.access_token = access_token
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.attempts, self.backoff_s, self.max_wait_s = attempts, backoff_s, max_wait_s
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        # Created on first use, inside the server's event loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}/{path.lstrip('/')}"
        headers = {"Authorization": f"Bearer {self.access_token}"}
        for attempt in range(1, self.attempts + 1):
            wait: float | None = None
            try:
                async with self.session().post(url, json=body, headers=headers) as response:
                    data = await response.json(content_type=None) if response.content_length != 0 else {}
                    if response.status < 300:
                        return data if isinstance(data, dict) else {}
                    error = (data or {}).get("error", {}) if isinstance(data, dict) else {}
                    failure = GraphApiError(
                        response.status,
                        str(error.get("message") or response.reason),
                        error.get("code"),
                        error.get("error_subcode"),
                    )
                    if not (response.status == 429 or response.status >= 500 or failure.code in RATE_LIMIT_CODES):
                        raise failure
                    wait = _retry_after(response.headers)
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
                failure = GraphApiError(0, f"{type(exc).__name__}: {exc}")
            if attempt == self.attempts:
                raise failure
            delay = self.backoff_s * 2 ** (attempt - 1) * (1 + random.random() / 4)
            delay = min(self.max_wait_s, max(delay, wait or 0.0))
            logger.warning("Graph API call to %s failed (%s); retry %d in %.1f s", path, failure, attempt, delay)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")
