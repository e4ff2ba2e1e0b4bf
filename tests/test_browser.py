"""The web chat page in a real headless Chromium (Debian's), against the real stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, Page, expect, sync_playwright

from bot.stack import Stack

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture()
def page(browser: Browser, stack: Stack) -> Iterator[Page]:
    context = browser.new_context(locale="pl-PL", viewport={"width": 520, "height": 860})
    page = context.new_page()
    page.goto(f"http://{stack.settings.host}:{stack.settings.agent_service_port}/")
    expect(page.locator("#status")).to_have_text("online", timeout=20_000)
    yield page
    context.close()


def send(page: Page, text: str) -> None:
    page.fill("#input", text)
    page.press("#input", "Enter")


def test_web_chat_answers_keeps_the_session_and_shows_buttons(page: Page) -> None:
    send(page, "Jak mogę zwrócić produkt?")
    answer = page.locator('.msg--bot[data-kb-article="returns-how-to"]')
    expect(answer).to_have_count(1, timeout=30_000)
    session = page.evaluate("document.body.dataset.session")

    page.reload()
    expect(page.locator("#status")).to_have_text("online", timeout=20_000)
    assert page.evaluate("document.body.dataset.session") == session
    expect(page.locator('.msg--bot[data-kb-article="returns-how-to"]')).to_have_count(1)

    send(page, "Jaka będzie jutro pogoda w Krakowie?")
    buttons = page.locator(".msg__buttons button")
    expect(buttons).to_have_count(2, timeout=30_000)
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(DOCS / "webchat.png"))
    buttons.nth(1).click()  # "Nie, dziękuję"
    expect(page.locator(".msg--bot").last).to_contain_text("Dobrze", timeout=30_000)


def test_agent_reply_appears_in_the_page(page: Page, stack: Stack) -> None:
    send(page, "chcę rozmawiać z konsultantem")
    expect(page.locator(".msg--bot").last).to_contain_text("konsultant", timeout=30_000)
    session = page.evaluate("document.body.dataset.session")
    s = stack.settings
    response = requests.post(
        f"http://{s.host}:{s.agent_service_port}/api/conversations/{session}/messages",
        json={"text": "Dzień dobry, w czym mogę pomóc?", "agent": "Anna"},
        headers={"Authorization": f"Bearer {s.agent_api_token}"},
        timeout=10,
    )
    assert response.status_code == 201
    agent = page.locator(".msg--agent")
    expect(agent).to_contain_text("Dzień dobry, w czym mogę pomóc?", timeout=10_000)
    expect(agent.locator(".msg__who")).to_have_text("Anna")
