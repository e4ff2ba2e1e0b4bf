"""Configuration of the Messenger and WhatsApp channels, from credentials.yml (which reads the environment).

A channel is enabled when any of its settings is set; then every required one must be,
or the Rasa server refuses to start with an error naming the missing variable. With
none set the channel is off: its webhook answers 404 and nothing is sent to Meta.
This module imports nothing from Rasa, so the launcher can read the variable names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_GRAPH_API_URL = "https://graph.facebook.com/v21.0"
GRAPH_API_URL_VARIABLE = "META_GRAPH_API_URL"

# credentials.yml key -> environment variable that credentials.yml expands into it
MESSENGER_VARIABLES = {
    "page_access_token": "MESSENGER_PAGE_ACCESS_TOKEN",
    "app_secret": "MESSENGER_APP_SECRET",
    "verify_token": "MESSENGER_VERIFY_TOKEN",
}
WHATSAPP_VARIABLES = {
    "access_token": "WHATSAPP_ACCESS_TOKEN",
    "app_secret": "WHATSAPP_APP_SECRET",
    "verify_token": "WHATSAPP_VERIFY_TOKEN",
    "phone_number_id": "WHATSAPP_PHONE_NUMBER_ID",
    "template_name": "WHATSAPP_TEMPLATE_NAME",
    "template_language": "WHATSAPP_TEMPLATE_LANGUAGE",
}
# Every variable credentials.yml reads for these channels: the launcher defaults them to ""
# (Rasa refuses to start on an unset ${VAR}), which leaves the channels off.
CHANNEL_VARIABLES = (*MESSENGER_VARIABLES.values(), *WHATSAPP_VARIABLES.values(), GRAPH_API_URL_VARIABLE)


class ChannelConfigError(ValueError):
    """A channel is enabled but a required setting is missing."""


def _read(channel: str, credentials: dict[str, Any] | None, variables: dict[str, str]) -> dict[str, str] | None:
    """The channel's settings, or None when none is set (the channel is off)."""
    credentials = credentials or {}
    values = {key: str(credentials.get(key) or "").strip() for key in variables}
    if not any(values.values()):
        return None
    missing = [f"{variables[key]} ('{key}' in credentials.yml)" for key, value in values.items() if not value]
    if missing:
        raise ChannelConfigError(
            f"{channel}: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set; the {channel} channel "
            f"is enabled because some of its settings are. Set all of {', '.join(variables.values())}, "
            f"or none to turn the channel off."
        )
    return values


def _graph_api_url(credentials: dict[str, Any] | None) -> str:
    url = str((credentials or {}).get("graph_api_url") or "").strip() or DEFAULT_GRAPH_API_URL
    if not url.startswith(("https://", "http://")):
        raise ChannelConfigError(f"{GRAPH_API_URL_VARIABLE} must be an http(s) URL, got {url!r}")
    return url.rstrip("/")


@dataclass(frozen=True)
class MessengerConfig:
    page_access_token: str
    app_secret: str
    verify_token: str
    graph_api_url: str = DEFAULT_GRAPH_API_URL

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> MessengerConfig | None:
        values = _read("Messenger", credentials, MESSENGER_VARIABLES)
        return cls(**values, graph_api_url=_graph_api_url(credentials)) if values else None


@dataclass(frozen=True)
class WhatsAppConfig:
    access_token: str
    app_secret: str
    verify_token: str
    phone_number_id: str
    template_name: str  # an approved template, sent when an agent replies outside the 24-hour window
    template_language: str  # its language code, e.g. en_US
    graph_api_url: str = DEFAULT_GRAPH_API_URL

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> WhatsAppConfig | None:
        values = _read("WhatsApp", credentials, WHATSAPP_VARIABLES)
        return cls(**values, graph_api_url=_graph_api_url(credentials)) if values else None
