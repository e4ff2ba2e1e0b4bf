"""The same question on web chat, Messenger and WhatsApp gets the same article and the same text."""

from __future__ import annotations

import aiohttp
import pytest

from bot.kb.articles import ArticleLibrary, load_articles
from bot.kb.render import answer_text
from bot.settings import Settings
from bot.stack import Stack
from tests.graph_stand_in import GraphStandIn
from tests.meta_client import (
    articles_answered,
    messenger_delivery,
    messenger_text,
    new_psid,
    new_wa_id,
    post_webhook,
    whatsapp_delivery,
    whatsapp_text,
)
from tests.webchat_client import WebChatCustomer

pytestmark = pytest.mark.e2e
LIMITS = {"webchat": 4000, "messenger": 2000, "whatsapp": 4096}
QUESTIONS = [
    ("pl", "Jak mogę zwrócić zamówiony produkt?", "returns-how-to"),
    ("ru", "Как отследить мой заказ?", "order-status-tracking"),
    ("en", "I forgot my password and can't log in, what should I do?", "password-reset"),
]


async def ask(channel: str, question: str, stack: Stack, http: aiohttp.ClientSession, graph_api: GraphStandIn):
    """The answer's article id and the texts the customer was shown, one per message."""
    if channel == "webchat":
        customer = await WebChatCustomer(stack.settings).connect()
        try:
            await customer.say(question)
            answer = await customer.next()
        finally:
            await customer.disconnect()
        return answer["custom"]["kb_article"], [answer["text"]]
    if channel == "messenger":
        customer = new_psid()
        payload = messenger_delivery([messenger_text(customer, question)])
        conversation = f"messenger:{customer}"
    else:
        customer = new_wa_id()
        payload = whatsapp_delivery([whatsapp_text(customer, question)])
        conversation = f"whatsapp:{customer}"
    assert (await post_webhook(http, stack, channel, payload))[0] == 200
    await graph_api.wait_for(customer, 1, what=lambda c: c.text is not None)
    sent = [c.text for c in graph_api.sent_to(customer) if c.text is not None]
    return (await articles_answered(http, stack, conversation, 1))[0], sent


@pytest.mark.parametrize("channel", ["webchat", "messenger", "whatsapp"])
@pytest.mark.parametrize(("language", "question", "article_id"), QUESTIONS)
async def test_same_question_gets_the_same_answer_on_every_channel(
    stack: Stack,
    stack_settings: Settings,
    http: aiohttp.ClientSession,
    graph_api: GraphStandIn,
    channel: str,
    language: str,
    question: str,
    article_id: str,
) -> None:
    article = ArticleLibrary(load_articles(stack_settings.articles_dir)).get(article_id, language)
    answered, texts = await ask(channel, question, stack, http, graph_api)
    assert answered == article_id
    assert all(len(text) <= LIMITS[channel] for text in texts)
    assert " ".join(texts).split() == answer_text(article).split()  # the same words, split only at spaces
    assert graph_api.problems() == []
