"""One channel-independent answer, and the helpers that fit it into a channel's limits.

Rasa hands an output channel one dict per bot turn; `Answer.from_message` keeps what a
customer sees (text, buttons, image) and what it is about (article id, whether a person
wrote it). Messenger and WhatsApp render it in their own formats; long text is split at
word boundaries and over-long button titles are shortened at a word, with the full
titles then listed in the text so nothing is hidden from the customer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Button:
    title: str
    payload: str


@dataclass(frozen=True)
class Answer:
    text: str = ""
    buttons: list[Button] = field(default_factory=list)
    image: str | None = None
    article_id: str | None = None
    language: str | None = None
    from_agent: bool = False

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Answer:
        custom = message.get("custom") if isinstance(message.get("custom"), dict) else {}
        buttons = [
            Button(str(b.get("title") or b.get("payload")), str(b.get("payload") or b.get("title")))
            for b in (message.get("buttons") or message.get("quick_replies") or [])
            if isinstance(b, dict) and (b.get("title") or b.get("payload"))
        ]
        return cls(
            text=str(message.get("text") or "").strip(),
            buttons=buttons,
            image=message.get("image") or None,
            article_id=custom.get("kb_article"),
            language=custom.get("language"),
            from_agent=bool(message.get("agent") or custom.get("agent")),
        )


def split_text(text: str, limit: int) -> list[str]:
    """Parts of at most `limit` characters, cut at a paragraph, line or word boundary."""
    text = text.strip()
    parts: list[str] = []
    while len(text) > limit:
        window = text[: limit + 1]
        cut = -1
        for separator in ("\n\n", "\n", " "):
            position = window.rfind(separator)
            if position > limit // 2 or (separator == " " and position > 0):
                cut = position
                break
        if cut <= 0:
            cut = limit  # one word longer than the limit (a long link): no boundary to respect
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        parts.append(text)
    return parts


def shorten(title: str, limit: int) -> str:
    """`title` within `limit` characters, cut at a word and marked with an ellipsis."""
    title = " ".join(title.split())
    if len(title) <= limit:
        return title
    cut = title[: limit - 1]
    if " " in cut and cut.rfind(" ") > limit // 2:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,.;:-") + "…"


def fit_buttons(answer: Answer, title_limit: int, max_buttons: int) -> tuple[str, list[Button]]:
    """The text and the buttons a channel can show; full titles join the text when shortened or left out."""
    shown = answer.buttons[:max_buttons]
    titles = [shorten(b.title, title_limit) for b in shown]
    text = answer.text
    if any(t != b.title for t, b in zip(titles, shown, strict=True)) or len(answer.buttons) > max_buttons:
        numbered = [f"{i}. {b.title}" for i, b in enumerate(answer.buttons, 1)]
        text = "\n".join([text, "", *numbered] if text else numbered)
        titles = [shorten(f"{i}. {b.title}", title_limit) for i, b in enumerate(shown, 1)]
    return text, [Button(t, b.payload) for t, b in zip(titles, shown, strict=True)]
