"""A conversation's transcript for agents, read from the Rasa tracker's events."""

from __future__ import annotations

from typing import Any


def transcript(tracker: dict[str, Any]) -> list[dict[str, Any]]:
    """Customer, bot and agent messages in order, with what the bot understood."""
    lines: list[dict[str, Any]] = []
    for event in tracker.get("events", []):
        kind = event.get("event")
        if kind == "user":
            parse = event.get("parse_data") or {}
            intent = parse.get("intent") or {}
            lines.append(
                {
                    "from": "customer",
                    "text": event.get("text"),
                    "timestamp": event.get("timestamp"),
                    "channel": event.get("input_channel"),
                    "intent": intent.get("name"),
                    "confidence": intent.get("confidence"),
                    "language": (parse.get("language") or {}).get("code"),
                }
            )
        elif kind == "bot":
            data = event.get("data") or {}
            custom = data.get("custom") or {}
            agent = (event.get("metadata") or {}).get("agent")
            line = {"from": "agent" if agent else "bot", "text": event.get("text"), "timestamp": event.get("timestamp")}
            if agent:
                line["agent"] = agent
            if custom.get("kb_article"):
                line["kb_article"], line["score"] = custom["kb_article"], custom.get("score")
            if data.get("buttons"):
                line["buttons"] = [b.get("title") for b in data["buttons"]]
            lines.append(line)
    return lines
