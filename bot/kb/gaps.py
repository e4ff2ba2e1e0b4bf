"""What customers asked that the knowledge base did not answer well, kept for the editors.

A customer's question is recorded (redacted: bot/redaction.py) when
- the bot found no article for it (`no_match`, actions/kb_answer.py), or only likely ones it
  offered as buttons instead of answering (`suggested`): a sample question an article lacks;
- the conversation went to a person (`escalated`, actions/handoff.py): the customer's last
  questions before the handoff, each with the article the bot had answered it with, if any;
- the customer rated the answer 👎 (`unhelpful`, `record_unhelpful`, from the feedback action).
A question is kept once per conversation: the first of these moments records it.
`bot/assistant kb gaps` groups the records by meaning (bot/kb/gap_report.py).

Keys (each starts with "<prefix>:kb:gaps"):
  (none)            stream of records: at, kind, text, language, article ("" if none), conversation (a hash)
  :seen:<hash>      this question of this conversation is recorded (kept 30 days)
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.redaction import redact

log = logging.getLogger(__name__)

Kind = Literal["no_match", "suggested", "escalated", "unhelpful"]
MAX_RECORDS = 100_000  # the stream keeps about this many of the latest records
SEEN_SECONDS = 30 * 24 * 3600
QUESTIONS_BEFORE_HANDOFF = 3
# Messages that steer the conversation rather than ask something of the knowledge base.
CONTROL_INTENTS = frozenset(
    {
        "greet",
        "goodbye",
        "thank",
        "affirm",
        "deny",
        "request_human",
        "bot_challenge",
        "feedback_helpful",
        "feedback_unhelpful",
        "rate_conversation",
        "forget_me",
    }
)
# Where a conversation's earlier part ends: questions before it were handled already.
BOUNDARIES = frozenset({"pause", "resume", "session_started", "restart"})


@dataclass(frozen=True)
class GapRecord:
    kind: Kind
    text: str  # redacted
    language: str
    article: str  # the article the bot answered with ("" if none)
    conversation: str  # a hash of the conversation id, to tell conversations apart without naming them
    at: float


def conversation_hash(conversation_id: str) -> str:
    return hashlib.sha256(conversation_id.encode()).hexdigest()[:12]


def questions_before_handoff(
    events: Iterable[dict[str, Any]], limit: int = QUESTIONS_BEFORE_HANDOFF
) -> list[tuple[str, str, str]]:
    """The customer's last questions since the conversation's previous pause or start: (text, language, article)."""
    questions: list[list[str]] = []
    for event in events:
        kind = event.get("event")
        if kind in BOUNDARIES:
            questions = []
        elif kind == "user":
            text = (event.get("text") or "").strip()
            parse = event.get("parse_data") or {}
            if not text or text.startswith("/") or (parse.get("intent") or {}).get("name") in CONTROL_INTENTS:
                continue  # buttons (feedback, choices) and "I want a person" are not questions
            questions.append([text, (parse.get("language") or {}).get("code") or "", ""])
        elif kind == "bot" and questions:
            article = ((event.get("data") or {}).get("custom") or {}).get("kb_article")
            if article:  # the answer to the latest question (typed, or chosen with a button)
                questions[-1][2] = article
    return [(text, language, article) for text, language, article in questions[-limit:]]


class GapStore:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    @property
    def stream(self) -> str:
        return f"{self.prefix}:kb:gaps"

    async def record(self, kind: Kind, conversation_id: str, text: str, language: str, article: str = "") -> bool:
        """Keep one redacted question; False if this conversation's question is recorded already."""
        text = redact(text.strip())
        if not text:
            return False
        conversation = conversation_hash(conversation_id)
        seen = hashlib.sha256(f"{conversation}\0{text}".encode()).hexdigest()[:20]
        if not await self.redis.set(f"{self.stream}:seen:{seen}", kind, nx=True, ex=SEEN_SECONDS):
            return False
        fields = {
            "kind": kind,
            "text": text,
            "language": language or "",
            "article": article or "",
            "conversation": conversation,
            "at": f"{time.time():.3f}",
        }
        try:
            await self.redis.xadd(self.stream, fields, maxlen=MAX_RECORDS, approximate=True)
        except RedisError:
            await self.redis.delete(f"{self.stream}:seen:{seen}")  # not kept: a later moment may record it
            raise
        return True

    async def records(self, since: float = 0.0, limit: int | None = None) -> list[GapRecord]:
        """Records from `since` (a Unix time) on, oldest first; with `limit`, the latest `limit` of them."""
        start = f"{int(since * 1000)}-0" if since else "-"
        if limit:
            raw = list(reversed(await self.redis.xrevrange(self.stream, "+", start, count=limit)))
        else:
            raw = await self.redis.xrange(self.stream, start, "+")
        return [
            GapRecord(
                kind=fields["kind"],
                text=fields["text"],
                language=fields.get("language", ""),
                article=fields.get("article", ""),
                conversation=fields.get("conversation", ""),
                at=float(fields.get("at") or 0),
            )
            for _, fields in raw
        ]


async def _safely(what: str, coroutine: Any) -> None:
    """Recording must never stop the bot from answering: a Redis failure is logged and skipped."""
    try:
        await coroutine
    except RedisError as exc:
        log.warning("could not record %s for the knowledge-base gaps report: %s", what, exc)


async def record_unanswered(
    redis: Redis, prefix: str, conversation_id: str, parse_data: dict[str, Any], kind: Kind = "no_match"
) -> None:
    """The bot found no article for the customer's message (`parse_data`: the tracker's latest message),
    or (`suggested`) none good enough to answer with."""
    text = parse_data.get("text") or ""
    language = (parse_data.get("language") or {}).get("code") or ""
    if text and not text.startswith("/"):
        await _safely(
            "a question without an answer", GapStore(redis, prefix).record(kind, conversation_id, text, language)
        )


async def record_escalation(redis: Redis, prefix: str, conversation_id: str, events: list[dict[str, Any]]) -> None:
    """The conversation goes to a person: keep the customer's last questions (and what the bot answered)."""
    store = GapStore(redis, prefix)
    for text, language, article in questions_before_handoff(events):
        await _safely("an escalated question", store.record("escalated", conversation_id, text, language, article))


async def record_unhelpful(
    redis: Redis, prefix: str, conversation_id: str, question: str, language: str, article_id: str
) -> None:
    """The customer rated the answer to `question` (given with `article_id`) as not helpful."""
    if question and not question.startswith("/"):
        await _safely(
            "an unhelpful answer",
            GapStore(redis, prefix).record("unhelpful", conversation_id, question, language, article_id),
        )
