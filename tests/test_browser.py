"""The web chat page in a real headless Chromium (Debian's), against the real stack."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from bot.stack import Stack
from tests.agent_client import PASSWORD, ensure_account
from tests.conftest import ALWAYS_CLOSED, ALWAYS_OPEN
from tests.rest_client import say

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
    # Generous: on a loaded 2-core machine the first socket.io handshake can take a while.
    expect(page.locator("#status")).to_have_text("online", timeout=45_000)
    yield page
    context.close()


def log_in(console: Page, stack: Stack, username: str) -> None:
    """Open the agent console and log in as `username` (password: tests.agent_client.PASSWORD)."""
    console.goto(f"http://{stack.settings.host}:{stack.settings.agent_service_port}/console")
    console.fill("#login-username", username)
    console.fill("#login-password", PASSWORD)
    console.click("#login-form button[type=submit]")
    expect(console.locator("#app")).to_be_visible(timeout=10_000)
    expect(console.locator("#login")).to_be_hidden()


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
    expect(page.locator(".msg--bot")).to_have_count(2, timeout=30_000)
    buttons = page.locator(".msg--bot").last.locator(".msg__buttons button")
    expect(buttons).to_have_count(2)
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(DOCS / "webchat.png"))
    buttons.nth(1).click()  # "Nie, dziękuję"
    expect(page.locator(".msg--bot").last).to_contain_text("Dobrze", timeout=30_000)


def test_agent_takes_over_in_the_console_and_hands_back(page: Page, browser: Browser, stack: Stack) -> None:
    s = stack.settings
    # Playwright's sync API runs an event loop in this thread: create the account in another one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, ensure_account(s, "ewa", "agent", "Ewa")).result()
    console_context = browser.new_context(viewport={"width": 1280, "height": 860})
    console = console_context.new_page()
    try:
        log_in(console, stack, "ewa")
        expect(console.locator("#live")).to_have_text("live", timeout=10_000)

        before = page.locator(".msg--bot").count()
        send(page, "Zamówiłam buty tydzień temu i nadal nie ma paczki")
        expect(page.locator(".msg--bot")).to_have_count(before + 1, timeout=30_000)
        send(page, "chcę rozmawiać z konsultantem")
        expect(page.locator(".msg--bot").last).to_contain_text("konsultant", timeout=30_000)
        session = page.evaluate("document.body.dataset.session")

        item = console.locator(f'.queue__item[data-conversation="{session}"]')
        expect(item).to_be_visible(timeout=5_000)  # pushed over the websocket, no reload
        expect(item).to_contain_text("customer request")
        expect(item).to_contain_text("pl")
        item.click()
        expect(console.locator("#c-reason")).to_have_text("the customer asked for a person")
        expect(console.locator("#transcript")).to_contain_text("nadal nie ma paczki")
        expect(console.locator("#transcript")).to_contain_text("understood: request_human")
        console.click("#claim")
        expect(console.locator("#c-meta")).to_contain_text("owner: ewa", timeout=5_000)

        # Canned replies come in the conversation's language, with the agent's name.
        console.select_option("#canned", label="greeting")
        expect(console.locator("#reply")).to_have_value(re.compile(r"^Dzień dobry, nazywam się Ewa"))
        expect(page.locator("#typing")).to_be_visible(timeout=5_000)  # the agent types: the customer sees it
        # One click inserts an article (in Polish) under what is already written.
        console.fill("#article-filter", "zwrócić")
        console.locator('#article-picks [data-article="returns-how-to"]').click()
        reply_box = console.locator("#reply").input_value()
        assert reply_box.startswith("Dzień dobry, nazywam się Ewa") and "\n\n" in reply_box
        returns_pl = (Path(s.articles_dir) / "returns-how-to" / "pl.md").read_text(encoding="utf-8")
        body = returns_pl.split("---", 2)[2].strip()
        assert reply_box.split("\n\n", 1)[1].startswith("Jak zwrócić produkt\n\n" + body[:40])
        console.fill("#note", "Klientka czeka od tygodnia, sprawdzić kuriera")
        console.click("#note-form button")
        expect(console.locator("#notes")).to_contain_text("sprawdzić kuriera", timeout=5_000)

        console.fill("#reply", "Dzień dobry, tu Ewa. Już sprawdzam Pani paczkę.")
        page.fill("#input", "dzięki")  # the customer types: the console shows it
        expect(console.locator("#typing")).to_be_visible(timeout=5_000)
        page.fill("#input", "")
        console.click("#send")
        agent = page.locator(".msg--agent")
        expect(agent).to_contain_text("Już sprawdzam Pani paczkę", timeout=10_000)
        expect(agent.locator(".msg__who")).to_have_text("Ewa")
        expect(page.locator("#messages")).not_to_contain_text("sprawdzić kuriera")  # notes stay with agents
        DOCS.mkdir(exist_ok=True)
        console.screenshot(path=str(DOCS / "console.png"))
        page.screenshot(path=str(DOCS / "webchat-agent.png"))

        console.click("#handback")
        expect(page.locator(".msg--bot").last).to_contain_text("Znowu rozmawiasz z asystentem", timeout=10_000)
        expect(item).to_have_count(0, timeout=5_000)
        send(page, "Jak mogę zwrócić produkt?")
        expect(page.locator('.msg--bot[data-kb-article="returns-how-to"]').last).to_be_visible(timeout=30_000)
    finally:
        console_context.close()


def test_admin_reads_the_analytics_page(page: Page, browser: Browser, stack: Stack) -> None:
    s = stack.settings
    send(page, "Jak mogę zwrócić produkt?")
    answer = page.locator('.msg--bot[data-kb-article="returns-how-to"]')
    expect(answer).to_have_count(1, timeout=30_000)
    answer.locator(".msg__buttons button").nth(1).click()  # 👎: not helpful
    expect(page.locator(".msg--bot").last).to_contain_text("Przykro mi", timeout=30_000)
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, ensure_account(s, "szef", "admin", "Szef")).result()
    context = browser.new_context(viewport={"width": 1280, "height": 1400})
    admin = context.new_page()
    try:
        log_in(admin, stack, "szef")
        admin.click("#analytics-link")
        expect(admin.locator("#report")).to_be_visible(timeout=10_000)  # shown once the report has loaded
        assert int(admin.locator("#k-conversations").inner_text()) >= 1
        expect(admin.locator("#c-articles svg")).to_contain_text("returns-how-to")
        expect(admin.locator("#t-unhelpful")).to_contain_text("returns-how-to")
        expect(admin.locator("#c-containment svg rect")).to_have_count(2)
        expect(admin.locator("[data-def=containment_rate]")).to_contain_text("handled alone")
        DOCS.mkdir(exist_ok=True)
        admin.screenshot(path=str(DOCS / "analytics.png"), full_page=True)
    finally:
        context.close()


def test_agent_links_and_unlinks_a_customers_conversations_in_the_console(
    browser: Browser, stack: Stack, business_hours: Path
) -> None:
    s = stack.settings
    email = f"ola.{secrets.token_hex(3)}@example.com"
    earlier, today = "rest:ola-" + secrets.token_hex(4), "rest:ola-" + secrets.token_hex(4)

    async def two_conversations() -> None:
        await ensure_account(s, "tomek", "agent", "Tomek")
        async with aiohttp.ClientSession() as http:
            business_hours.write_text(ALWAYS_CLOSED)  # last night: a ticket with an email
            await say(http, stack, earlier, "Chcę rozmawiać z konsultantem")
            await say(http, stack, earlier, email)
            business_hours.write_text(ALWAYS_OPEN)  # today: waiting for an agent, no contact given
            await say(http, stack, today, "Paczka nie dotarła, chcę rozmawiać z człowiekiem")

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, two_conversations()).result()
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    console = context.new_page()
    try:
        log_in(console, stack, "tomek")
        console.locator(f'.queue__item[data-conversation="{today}"]').click()
        expect(console.locator("#linked")).to_contain_text("no other conversations linked")

        console.fill("#link-with", email.upper())  # the agent recognises the customer by their email
        console.click("#link-form button")
        linked = console.locator(f'#linked [data-conversation="{earlier}"]')
        expect(linked).to_contain_text("rest · " + earlier)
        expect(console.locator(f'#earlier [data-conversation="{earlier}"]')).to_be_visible()

        linked.locator(".link").click()  # open the other conversation
        expect(console.locator("#c-contacts")).to_have_text(email)
        expect(console.locator("#transcript")).to_contain_text(email)
        back = console.locator(f'#linked [data-conversation="{today}"]')
        expect(back).to_be_visible()
        back.locator(".unlink").click()
        expect(console.locator("#linked")).to_contain_text("no other conversations linked")
        expect(console.locator("#c-error")).to_have_text("")
    finally:
        context.close()


def test_web_chat_fails_open_to_people_when_the_bot_server_is_down(page: Page, browser: Browser, stack: Stack) -> None:
    s = stack.settings
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, ensure_account(s, "iza", "agent", "Iza")).result()
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    console = context.new_page()
    try:
        log_in(console, stack, "iza")
        expect(console.locator("#live")).to_have_text("live", timeout=10_000)
        send(page, "Jak mogę zwrócić produkt?")
        expect(page.locator('.msg--bot[data-kb-article="returns-how-to"]')).to_have_count(1, timeout=30_000)
        session = page.evaluate("document.body.dataset.session")

        stack.stop("rasa")
        try:
            expect(page.locator("#status")).to_have_text("reconnecting…", timeout=20_000)
            send(page, "Paczka przyszła uszkodzona, co mam zrobić?")
            # Honest, in the customer's language, and not silent: people have it now.
            expect(page.locator(".msg--bot").last).to_contain_text("problem techniczny", timeout=10_000)
            item = console.locator(f'.queue__item[data-conversation="{session}"]')
            expect(item).to_contain_text("bot failure", timeout=5_000)
            item.click()
            expect(console.locator("#transcript")).to_contain_text("przyszła uszkodzona")
        finally:
            stack.start(("rasa",))

        expect(page.locator("#status")).to_have_text("online", timeout=60_000)
        expect(page.locator(".msg--customer").last).to_have_text("Paczka przyszła uszkodzona, co mam zrobić?")
        expect(page.locator(".msg--bot").last).to_contain_text("problem techniczny")  # still shown after reconnecting
        console.click("#claim")
        expect(console.locator("#c-meta")).to_contain_text("owner: iza", timeout=5_000)
        console.fill("#reply", "Przykro mi, proszę o zdjęcie paczki.")
        console.click("#send")
        expect(page.locator(".msg--agent").last).to_contain_text("proszę o zdjęcie", timeout=10_000)
        # The message kept while the bot was down is in the conversation, before the reply, understood.
        lines = console.locator("#transcript li")
        expect(lines.last).to_contain_text("proszę o zdjęcie", timeout=5_000)
        # The reply is pushed live first; the transcript reloaded after the send shows what the bot understood.
        kept_line = lines.filter(has_text="przyszła uszkodzona")
        expect(kept_line).to_contain_text("understood:", timeout=5_000)
        texts = lines.all_inner_texts()
        kept = next(i for i, text in enumerate(texts) if "przyszła uszkodzona" in text)
        assert kept < len(texts) - 1
        assert sum("przyszła uszkodzona" in text for text in texts) == 1  # replayed once
    finally:
        context.close()
