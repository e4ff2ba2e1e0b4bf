"""Fuzzing the webhook payload parsers (hypothesis), then the real webhooks with the same payloads.

A parser may refuse a delivery only with the errors the webhook turns into 400; anything
else would be a 500. Well-formed deliveries yield exactly their customer messages.
"""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.channels.messenger import MessengerInput
from bot.channels.meta_config import MessengerConfig, WhatsAppConfig
from bot.channels.whatsapp import WhatsAppInput
from bot.stack import Stack
from tests.graph_stand_in import PHONE_NUMBER_ID
from tests.meta_client import (
    MESSENGER_APP_SECRET,
    WHATSAPP_APP_SECRET,
    messenger_delivery,
    messenger_text,
    signature,
    whatsapp_delivery,
    whatsapp_text,
)

REFUSALS = (ValueError, KeyError, TypeError, AttributeError)  # what the webhook answers with 400
MESSENGER = MessengerInput(MessengerConfig("token", "secret", "verify"), None)
WHATSAPP = WhatsAppInput(WhatsAppConfig("token", "secret", "verify", PHONE_NUMBER_ID, "t", "en_US"), None)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
# Text as customers write it, and worse: emoji, right-to-left, control characters, very long.
unusual_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=50) | st.sampled_from(
    ["😀👍🏽🇵🇱", "مرحبا كيف حالك", "שלום\u202e", "\x00\x07\x1b[31m", "a" * 10_000, "\ufeff  "]
)
ids = st.text(alphabet="0123456789", min_size=1, max_size=16)


def mangled(delivery: dict[str, Any], value: Any, path: list[int]) -> dict[str, Any]:
    """The delivery with one of its values (chosen by `path`) replaced by `value`."""
    delivery = json.loads(json.dumps(delivery))
    node: Any = delivery
    for step in path:
        children = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        containers = [(k, v) for k, v in children if isinstance(v, (dict, list)) and v]
        if not containers or step % 3 == 0:
            keys = [k for k, _ in children]
            if keys:
                node[keys[step % len(keys)]] = value
            return delivery
        node = containers[step % len(containers)][1]
    return delivery


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_cleaned_text_has_no_control_or_invisible_characters(text: str) -> None:
    import unicodedata

    from bot.channels.messages import clean_text

    cleaned = clean_text(text)
    assert all(c == "\n" or unicodedata.category(c) != "Cc" for c in cleaned)
    assert not {"\u202e", "\u200b", "\ufeff"} & set(cleaned)
    assert cleaned == cleaned.strip() and clean_text(cleaned) == cleaned


@settings(max_examples=300, deadline=None)
@given(payload=json_values)
def test_arbitrary_json_is_parsed_or_refused_cleanly(payload: Any) -> None:
    for channel in (MESSENGER, WHATSAPP):
        with contextlib.suppress(REFUSALS):
            channel.parse(payload)


@settings(max_examples=300, deadline=None)
@given(psid=ids, text=unusual_text, value=json_values, path=st.lists(st.integers(0, 20), max_size=6))
def test_damaged_deliveries_are_parsed_or_refused_cleanly(psid: str, text: str, value: Any, path: list[int]) -> None:
    for channel, delivery in (
        (MESSENGER, messenger_delivery([messenger_text(psid, text)])),
        (WHATSAPP, whatsapp_delivery([whatsapp_text(psid, text)])),
    ):
        with contextlib.suppress(REFUSALS):
            channel.parse(mangled(delivery, value, path))


@settings(max_examples=200, deadline=None)
@given(psids=st.lists(ids, min_size=1, max_size=5), text=unusual_text)
def test_well_formed_deliveries_yield_every_message(psids: list[str], text: str) -> None:
    inbound, _ = MESSENGER.parse(messenger_delivery([messenger_text(p, text) for p in psids]))
    assert [(i.conversation_id, i.text) for i in inbound] == [(f"messenger:{p}", text) for p in psids]
    inbound, _ = WHATSAPP.parse(whatsapp_delivery([whatsapp_text(p, text) for p in psids]))
    assert [(i.conversation_id, i.text) for i in inbound] == [(f"whatsapp:{p}", text) for p in psids]


@pytest.mark.e2e
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(psid=ids, text=unusual_text, value=json_values, path=st.lists(st.integers(0, 20), max_size=6))
def test_the_real_webhooks_never_answer_500(stack: Stack, psid: str, text: str, value: Any, path: list[int]) -> None:
    for channel, secret, delivery in (
        ("messenger", MESSENGER_APP_SECRET, messenger_delivery([messenger_text("9" + psid, text)])),
        ("whatsapp", WHATSAPP_APP_SECRET, whatsapp_delivery([whatsapp_text("9" + psid, text)])),
    ):
        body = json.dumps(mangled(delivery, value, path)).encode()
        request = urllib.request.Request(
            f"{stack.settings.rasa_url}/webhooks/{channel}/webhook",
            data=body,
            headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature(secret, body)},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        assert status in (200, 400, 413), (channel, status)
