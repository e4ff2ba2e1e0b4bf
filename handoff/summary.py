"""A short summary of an escalated conversation for the agent who picks it up."""

from __future__ import annotations

from typing import Any

from bot.escalations import Escalation
from bot.kb.articles import ArticleLibrary

REASONS = {
    "customer_request": "the customer asked for a person",
    "low_confidence": "the bot did not understand twice",
    "repeated_question": "the customer asked again after the bot's answer",
    "frustration": "the customer is unhappy",
    "bot_failure": "the bot failed to answer",
}
SMALL_TALK = {"greet", "goodbye", "thank", "affirm", "deny", "bot_challenge"}


def _clip(text: str, limit: int = 140) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def summarise(escalation: Escalation, lines: list[dict[str, Any]], articles: ArticleLibrary) -> dict[str, Any]:
    """What the customer wants (their first real question), what the bot answered, why it escalated."""
    said = [line for line in lines if line["from"] == "customer" and line.get("text")]
    asked = [line for line in said if line.get("intent") not in SMALL_TALK and not str(line["text"]).startswith("/")]
    wants = _clip(str((asked or said or [{"text": ""}])[0]["text"]))
    answered = []
    for offered in escalation.articles_offered:
        article = articles.get(offered["article_id"], escalation.language)
        title = article.title if article else offered["article_id"]
        if title not in answered:
            answered.append(title)
    reason = REASONS.get(escalation.reason, escalation.reason)
    bot_part = f"bot answered: {', '.join(answered)}" if answered else "bot found no article"
    line = f"{wants or '(no message)'} — {bot_part}; {reason}"
    return {"wants": wants, "bot_answered": answered, "reason": reason, "line": line}
