"""Load benchmark of the whole stack with simulated customers: `bot/assistant bench load`.

Starts its own stack (free ports, its own Redis prefix, always-open hours) and times its
cold start with the trained model (process launch → every health URL answers). Then
--customers customers talk to it at once for --duration seconds through the real channels:
most over the REST webhook, a share over the socket.io web chat with signed sessions. A
conversation mixes knowledge-base questions in en/pl/ro/ru (the articles' own sample
questions, many phrasings), small talk (greet, thanks, goodbye from the training data)
and, in a share of them, a request for a person: a logged-in agent claims it, replies
through the agent API (delivery to a web chat customer is timed; the REST channel cannot
receive messages outside its own HTTP answer, so REST handoffs are claimed and handed back
without replies) and hands it back to the bot.

Open loop (default, --rate 42): messages fall due at R per second in all (Poisson arrivals
spread over the customers); a latency counts from the moment the message was due, or, when
the customer was still busy with its previous turn then, from the moment it was sent (a
person writes after reading the answer). A stack that falls behind shows as lower
throughput and as messages sent late. Closed loop (--rate 0): each customer sends its next
message when the answer to the last one arrived, after --think seconds: the stack's
capacity, with latencies that are mostly queueing.

Reports latency per message kind (p50/p95/p99/max), throughput, errors by kind, CPU and
memory per process (from /proc) and, with --profile, where one knowledge-base answer's
time goes. Writes docs/bench/load.json, load.md and load.png.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import secrets
import tempfile
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp
import socketio
import yaml
from tqdm import tqdm

from bot.bench.common import (
    agent_token,
    bench_settings,
    cleanup,
    cpu_count,
    load_average,
    percentiles,
    python_loop_ms,
    utc_now,
)
from bot.eval.run_info import commit, processor, uncommitted_changes
from bot.kb.articles import load_articles
from bot.settings import LANGUAGES, PROJECT_DIR, Settings
from bot.stack import Stack, ensure_trained, process_env

KINDS = ("kb_answer", "small_talk", "handoff_request", "agent_reply")
SESSION_KIND = "webchat_session"  # opening a web chat session: timed, not a message
SMALL_TALK_INTENTS = ("greet", "thank", "goodbye")
GREET_SHARE, THANK_SHARE, GOODBYE_SHARE = 0.7, 0.6, 0.5
QUESTIONS_PER_CONVERSATION = (2, 4)
GRACE_S = 1.0  # after a web chat message that is not the answer, how long to wait for the rest of the turn
HANDBACK_WAIT_S = 5.0
AGENT_REPLIES = {
    "en": ["Hi, I'm Anna from the support team. Let me check that for you.", "Thanks for waiting, it's sorted now."],
    "pl": ["Dzień dobry, tu Anna z obsługi klienta. Już sprawdzam.", "Dziękuję za cierpliwość, sprawa załatwiona."],
    "ro": ["Bună, sunt Anna de la asistență. Verific imediat.", "Mulțumesc pentru răbdare, am rezolvat."],
    "ru": ["Здравствуйте, это Анна из поддержки. Сейчас проверю.", "Спасибо за ожидание, всё готово."],
}
TARGETS = {"kb_p50_ms": 80.0, "kb_p95_ms": 200.0, "per_s": 40.0, "duration_s": 300.0, "growth_pct": 10.0}
TARGET_CUSTOMERS = 20
# Offered load by default: the target rate and 5% more, so that meeting it is not a coin toss of Poisson
# arrivals (±0.4 msg/s over 5 minutes), and the latency targets are judged while the stack carries it.
DEFAULT_RATE = 42.0
COLD_START_TARGET_S = 60.0
STACK_PROCESSES = ("rasa", "actions", "agent-service")
LOAD_GENERATOR = "load generator (this process)"
QUALITY_ERRORS = ("wrong_answer", "unexpected_handoff")  # the bot answered, but not as the question expects
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- options -----------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    customers: int = 20
    duration: float = 300.0
    rate: float | None = DEFAULT_RATE
    think: float = 0.0
    webchat_share: float = 0.25
    handoff_share: float = 0.15
    agent_replies: int = 2
    timeout: float = 10.0
    sample_every: float = 2.0
    profile: bool = False
    profile_samples: int = 40
    seed: int = 7
    out: Path = Path("docs/bench")

    @property
    def mode(self) -> str:
        return f"open loop, {self.rate:g} msg/s due" if self.rate else f"closed loop, think time {self.think:g} s"

    @property
    def webchat_customers(self) -> int:
        if self.webchat_share <= 0:
            return 0
        return min(self.customers, max(1, round(self.customers * self.webchat_share)))

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "out": str(self.out), "mode": self.mode, "webchat_customers": self.webchat_customers}


def parse_options(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="bot/assistant bench load", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    d = Options()
    parser.add_argument("--customers", type=int, default=d.customers, help="concurrent customers (default 20)")
    parser.add_argument("--duration", type=float, default=d.duration, help="seconds of load (default 300)")
    parser.add_argument(
        "--rate",
        type=float,
        default=d.rate,
        help=f"open loop: messages per second due, in all (default {d.rate:g}); "
        "0: closed loop (each customer sends its next message when the answer arrived, after --think)",
    )
    parser.add_argument("--think", type=float, default=d.think, help="closed loop: seconds between answer and next")
    parser.add_argument("--webchat-share", type=float, default=d.webchat_share, help="share of web chat customers")
    parser.add_argument(
        "--handoff-share", type=float, default=d.handoff_share, help="conversations asking for a person"
    )
    parser.add_argument("--agent-replies", type=int, default=d.agent_replies, help="agent replies per web chat handoff")
    parser.add_argument("--timeout", type=float, default=d.timeout, help="seconds to wait for an answer")
    parser.add_argument("--sample-every", type=float, default=d.sample_every, help="seconds between CPU/RSS samples")
    parser.add_argument("--profile", action="store_true", help="time /model/parse, the webhook and the action server")
    parser.add_argument("--profile-samples", type=int, default=d.profile_samples, help="messages per profiled path")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--out", type=Path, default=d.out)
    a = parser.parse_args(argv)
    if a.customers < 1 or a.duration <= 0 or a.rate < 0:
        parser.error("--customers and --duration must be positive, --rate 0 or more")
    return Options(
        a.customers,
        a.duration,
        a.rate or None,
        a.think,
        a.webchat_share,
        a.handoff_share,
        a.agent_replies,
        a.timeout,
        a.sample_every,
        a.profile,
        a.profile_samples,
        a.seed,
        a.out,
    )


# --- what customers say ------------------------------------------------------


@dataclass(frozen=True)
class Utterance:
    kind: str  # one of KINDS
    text: str
    language: str
    article: str = ""  # a knowledge-base question must be answered with this article


@dataclass
class Material:
    questions: dict[str, list[tuple[str, str]]]  # language -> [(question, article id)]
    phrases: dict[str, dict[str, list[str]]]  # language -> intent -> training examples


def training_examples(path: Path, intents: tuple[str, ...]) -> dict[str, list[str]]:
    """Plain examples (no entity annotations) of some intents in a Rasa NLU file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    found: dict[str, list[str]] = {}
    for block in data.get("nlu") or []:
        if block.get("intent") in intents:
            lines = (line.strip() for line in str(block.get("examples", "")).splitlines())
            texts = [line[2:].strip() for line in lines if line.startswith("- ")]
            found.setdefault(block["intent"], []).extend(t for t in texts if t and not set(t) & set("[]{}"))
    return found


def load_material(settings: Settings) -> Material:
    questions: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for article in load_articles(settings.articles_dir):
        questions[article.language].extend((q, article.id) for q in article.questions)
    intents = (*SMALL_TALK_INTENTS, "request_human")
    nlu_dir = settings.project_dir / "nlu_data" / "nlu"
    phrases = {lang: training_examples(nlu_dir / f"{lang}.yml", intents) for lang in LANGUAGES}
    for lang in LANGUAGES:
        missing = [i for i in intents if not phrases[lang].get(i)] + ([] if questions.get(lang) else ["questions"])
        if missing:
            raise SystemExit(f"error: no {', '.join(missing)} for language {lang} in nlu_data/ or kb_articles/")
    return Material(dict(questions), phrases)


def conversation(rng: random.Random, material: Material, handoff_share: float) -> list[Utterance]:
    """One customer's conversation: maybe a greeting, 2-4 questions, maybe a person, thanks, goodbye."""
    lang = rng.choice(LANGUAGES)

    def say(intent: str, kind: str = "small_talk") -> Utterance:
        return Utterance(kind, rng.choice(material.phrases[lang][intent]), lang)

    steps = [say("greet")] if rng.random() < GREET_SHARE else []
    count = min(rng.randint(*QUESTIONS_PER_CONVERSATION), len(material.questions[lang]))
    steps += [Utterance("kb_answer", q, lang, a) for q, a in rng.sample(material.questions[lang], count)]
    if rng.random() < handoff_share:
        steps.append(say("request_human", "handoff_request"))
    if rng.random() < THANK_SHARE:
        steps.append(say("thank"))
    if rng.random() < GOODBYE_SHARE:
        steps.append(say("goodbye"))
    return steps


# --- judging answers ---------------------------------------------------------


def offered_articles(messages: list[dict[str, Any]]) -> list[str]:
    """Articles the bot answered with, or offered as buttons (/ask_question{"kb_article": ...})."""
    ids = []
    for m in messages:
        article = (m.get("custom") or {}).get("kb_article")
        if article:
            ids.append(str(article))
        for button in m.get("buttons") or []:
            payload = str(button.get("payload", ""))
            if payload.startswith("/ask_question{"):
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    ids.append(str(json.loads(payload[len("/ask_question") :])["kb_article"]))
    return ids


def handoff_of(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((m["custom"]["handoff"] for m in messages if (m.get("custom") or {}).get("handoff")), None)


def verdict(u: Utterance, messages: list[dict[str, Any]]) -> str | None:
    """None when the bot's turn answers the utterance as it should, else an error kind."""
    if not messages:
        return "no_answer"
    handoff = handoff_of(messages)
    if handoff and handoff.get("reason") == "bot_failure":
        return "bot_failure"  # fail open: the bot could not answer
    if u.kind == "handoff_request":
        return None if handoff else "wrong_answer"
    if handoff:
        return "unexpected_handoff"
    offered = offered_articles(messages)
    if u.kind == "kb_answer":
        return None if u.article in offered else "wrong_answer"
    return "wrong_answer" if offered or not any(m.get("text") for m in messages) else None


# --- customers on the real channels -------------------------------------------


@dataclass
class Reply:
    messages: list[dict[str, Any]]
    arrived: float  # perf_counter() when the answer (or the last message seen) arrived
    error: str | None = None  # transport: http_<status>, timeout, connection


class Customer(Protocol):
    channel: str
    receives_agent_messages: bool

    @property
    def conversation_id(self) -> str: ...

    async def say(self, u: Utterance, timeout: float) -> Reply: ...

    async def wait_for(self, done: Callable[[list[dict[str, Any]]], bool], timeout: float) -> Reply: ...

    async def close(self) -> None: ...


class RestCustomer:
    channel = "rest"
    receives_agent_messages = False

    def __init__(self, http: aiohttp.ClientSession, rasa_url: str, sender: str) -> None:
        self.http, self.url, self.sender = http, rasa_url + "/webhooks/rest/webhook", sender

    @property
    def conversation_id(self) -> str:
        return "rest:" + self.sender

    async def say(self, u: Utterance, timeout: float) -> Reply:
        body = {"sender": self.sender, "message": u.text, "metadata": {"language": u.language}}
        try:
            async with self.http.post(self.url, json=body, timeout=aiohttp.ClientTimeout(total=timeout)) as r:
                if r.status != 200:
                    return Reply([], time.perf_counter(), f"http_{r.status}")
                messages = await r.json(content_type=None)
                return Reply(messages if isinstance(messages, list) else [], time.perf_counter())
        except asyncio.TimeoutError:
            return Reply([], time.perf_counter(), "timeout")
        except aiohttp.ClientError:
            return Reply([], time.perf_counter(), "connection")

    async def wait_for(self, done: Callable[[list[dict[str, Any]]], bool], timeout: float) -> Reply:
        return Reply([], time.perf_counter(), "no_channel")  # REST answers only inside its own HTTP response

    async def close(self) -> None:
        return None


class WebChatCustomer:
    """The web chat page's side of Rasa's socket.io channel (as tests/webchat_client.py)."""

    channel = "webchat"
    receives_agent_messages = True

    def __init__(self, rasa_url: str) -> None:
        self.rasa_url = rasa_url
        self.client = socketio.AsyncClient(reconnection=False)
        self.inbox: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()
        self.client.on("bot_uttered", self._received)
        self.session_id = ""

    async def _received(self, data: dict[str, Any]) -> None:
        self.inbox.put_nowait((time.perf_counter(), data))

    @property
    def conversation_id(self) -> str:
        return self.session_id

    async def open(self, timeout: float) -> None:
        confirmed: asyncio.Future = asyncio.get_running_loop().create_future()
        self.client.on("session_confirm", lambda data: confirmed.done() or confirmed.set_result(data))
        # websocket, as the page: long polling would need every request at the same Rasa worker
        await self.client.connect(
            self.rasa_url, socketio_path="/socket.io", transports=["websocket"], wait_timeout=timeout
        )
        await self.client.emit("session_request", {})
        self.session_id = (await asyncio.wait_for(confirmed, timeout))["session_id"]

    async def say(self, u: Utterance, timeout: float) -> Reply:
        while not self.inbox.empty():  # leftovers of earlier turns
            self.inbox.get_nowait()
        try:
            await self.client.emit("user_uttered", {"message": u.text, "metadata": {"language": u.language}})
        except socketio.exceptions.SocketIOError:
            return Reply([], time.perf_counter(), "connection")
        return await self.wait_for(lambda messages: verdict(u, messages) is None, timeout, GRACE_S)

    async def wait_for(
        self, done: Callable[[list[dict[str, Any]]], bool], timeout: float, grace: float | None = None
    ) -> Reply:
        """Messages until `done` says the answer is there; after one that is not, wait `grace` for more."""
        messages: list[dict[str, Any]] = []
        arrived = time.perf_counter()
        deadline = arrived + timeout
        while not (messages and done(messages)):
            wait = deadline - time.perf_counter()
            if messages and grace is not None:
                wait = min(wait, grace)
            if wait <= 0:
                break
            try:
                arrived, data = await asyncio.wait_for(self.inbox.get(), wait)
            except asyncio.TimeoutError:
                break
            messages.append(data)
        return Reply(messages, arrived, None if messages else "timeout")

    async def close(self) -> None:
        await self.client.disconnect()
        http = getattr(self.client.eio, "http", None)  # engineio leaves it open when the server dropped us first
        if http is not None and not http.closed:
            await http.close()


class AgentApi:
    """One logged-in agent acting on conversations through the agent service's HTTP API."""

    def __init__(self, http: aiohttp.ClientSession, base: str, token: str, timeout: float) -> None:
        self.http, self.base, self.timeout = http, base, timeout
        self.headers = {"Authorization": f"Bearer {token}"}

    async def act(self, conversation_id: str, action: str, body: dict[str, Any] | None = None) -> str | None:
        """POST /api/conversations/{id}/{action}; None on success, else an error kind."""
        url = f"{self.base}/api/conversations/{quote(conversation_id, safe='')}/{action}"
        try:
            async with self.http.post(
                url, json=body or {}, headers=self.headers, timeout=aiohttp.ClientTimeout(total=self.timeout)
            ) as r:
                await r.read()
                return None if r.status in (200, 201) else f"{action}_http_{r.status}"
        except asyncio.TimeoutError:
            return f"{action}_timeout"
        except aiohttp.ClientError:
            return f"{action}_connection"


# --- the run -----------------------------------------------------------------


@dataclass
class Sample:
    t: float  # seconds from the start of the load to the answer
    kind: str
    channel: str
    latency_ms: float | None  # None when nothing arrived
    error: str | None
    detail: str = ""  # for an error: what was said and what came back


class Pacer:
    """When a customer's next message goes: after the answer (+ think time), or when it falls due."""

    def __init__(self, options: Options, rng: random.Random) -> None:
        self.rng, self.think = rng, options.think
        self.per_customer = options.rate / options.customers if options.rate else None
        self.due = time.perf_counter() + (rng.expovariate(self.per_customer) if self.per_customer else 0.0)
        self.started = False
        self.late = 0

    async def next_slot(self) -> float:
        """Waits for the next message's moment; returns the time its latency counts from."""
        if self.per_customer is None:
            if self.started and self.think > 0:
                await asyncio.sleep(self.think * self.rng.uniform(0.5, 1.5))
            self.started = True
            return time.perf_counter()
        now = time.perf_counter()
        due, delay = self.due, self.due - now
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.1:
            self.late += 1
        self.due += self.rng.expovariate(self.per_customer)
        # A customer still busy with the last turn when this message fell due (waiting for its
        # answer, for an agent, or for the rest of a web chat turn) writes once done, as people do:
        # then the latency counts from that moment. Falling behind shows as throughput and `late`.
        return max(due, now)


@dataclass
class Run:
    options: Options
    settings: Settings
    material: Material
    http: aiohttp.ClientSession
    agent: AgentApi
    start: float
    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    samples: list[Sample] = field(default_factory=list)
    pacers: list[Pacer] = field(default_factory=list)
    leaving: list[asyncio.Task] = field(default_factory=list)

    @property
    def deadline(self) -> float:
        return self.start + self.options.duration

    def over(self) -> bool:
        return time.perf_counter() >= self.deadline

    def record(
        self, kind: str, channel: str, since: float, reply: Reply | None, error: str | None, said: str = ""
    ) -> None:
        arrived = reply.arrived if reply else time.perf_counter()
        latency = (arrived - since) * 1000 if reply and reply.messages else None
        detail = describe(said, reply) if error else ""
        self.samples.append(Sample(round(arrived - self.start, 3), kind, channel, latency, error, detail))


def describe(said: str, reply: Reply | None) -> str:
    messages = reply.messages if reply else []
    got = offered_articles(messages) or [str(m.get("text", ""))[:60] for m in messages[:2]]
    return f"{said!r} → {got}"


async def open_customer(run: Run, channel: str, sender: str) -> Customer | None:
    if channel == "rest":
        return RestCustomer(run.http, run.settings.rasa_url, sender)
    customer = WebChatCustomer(run.settings.rasa_url)
    started = time.perf_counter()
    try:
        await customer.open(run.options.timeout)
    except (asyncio.TimeoutError, socketio.exceptions.SocketIOError, aiohttp.ClientError) as exc:
        run.record(
            SESSION_KIND, channel, started, None, "timeout" if isinstance(exc, asyncio.TimeoutError) else "connection"
        )
        run.leaving.append(asyncio.create_task(customer.close()))
        await asyncio.sleep(1)
        return None
    run.record(SESSION_KIND, channel, started, Reply([{}], time.perf_counter()), None)
    return customer


async def agent_takes_over(run: Run, customer: Customer, pacer: Pacer, rng: random.Random, lang: str) -> bool:
    """Claim, reply (timed to the customer when the channel can receive it), hand back."""
    conversation_id = customer.conversation_id
    error = await run.agent.act(conversation_id, "claim")
    if error:
        run.record("agent_reply", customer.channel, time.perf_counter(), None, error)
        return False
    for i in range(run.options.agent_replies if customer.receives_agent_messages else 0):
        since = await pacer.next_slot()
        text = f"{rng.choice(AGENT_REPLIES[lang])} (ref {conversation_id[-6:]}-{i})"
        error = await run.agent.act(conversation_id, "messages", {"text": text})
        reply = None
        if error is None:
            reply = await customer.wait_for(lambda ms, t=text: any(m.get("text") == t for m in ms), run.options.timeout)
            error = reply.error
        run.record("agent_reply", customer.channel, since, reply, error)
    error = await run.agent.act(conversation_id, "handback")
    if error:
        run.record("agent_reply", customer.channel, time.perf_counter(), None, error)
        return False
    if customer.receives_agent_messages:  # "you're back with the assistant"
        await customer.wait_for(bool, HANDBACK_WAIT_S)
    return True


async def one_conversation(run: Run, customer: Customer, pacer: Pacer, rng: random.Random) -> None:
    for u in conversation(rng, run.material, run.options.handoff_share):
        if run.over():
            return
        since = await pacer.next_slot()
        reply = await customer.say(u, run.options.timeout)
        error = reply.error or verdict(u, reply.messages)
        run.record(u.kind, customer.channel, since, reply, error, f"{u.text} [{u.language}, {u.article or '-'}]")
        if u.kind == "handoff_request" and error is None:
            if not await agent_takes_over(run, customer, pacer, rng, u.language):
                return
        elif error not in (None, "wrong_answer"):
            return  # paused, failed or out of step: this customer starts a new conversation


async def customer_loop(run: Run, index: int) -> None:
    rng = random.Random(f"{run.options.seed}-{index}")
    pacer = Pacer(run.options, rng)
    run.pacers.append(pacer)
    channel = "webchat" if index < run.options.webchat_customers else "rest"
    number = 0
    while not run.over():
        number += 1
        customer = await open_customer(run, channel, f"load-{run.tag}-{index}-{number}")
        if customer is None:
            continue
        try:
            await one_conversation(run, customer, pacer, rng)
        finally:
            # A disconnect waits for the server's side of it: let it finish in the background.
            run.leaving.append(asyncio.create_task(customer.close()))


async def show_progress(run: Run) -> None:
    with tqdm(total=int(run.options.duration), desc="load", unit="s", dynamic_ncols=True) as bar:
        while not run.over():
            await asyncio.sleep(1)
            elapsed = min(run.options.duration, time.perf_counter() - run.start)
            bar.update(int(elapsed) - bar.n)
            recent = [s for s in run.samples if s.t >= elapsed - 5 and s.kind in KINDS]
            kb = [s.latency_ms for s in recent if s.kind == "kb_answer" and s.latency_ms is not None]
            bar.set_postfix(
                msg_s=f"{len(recent) / min(5, max(elapsed, 1)):.1f}",
                kb_p50=f"{percentiles(kb).get('p50', '-')}ms",
                errors=sum(1 for s in run.samples if s.error),
            )


# --- processes: CPU and memory from /proc --------------------------------------


def read_stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, utime + stime in clock ticks) of a process, None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[11]) + int(fields[12])


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def process_table() -> dict[int, tuple[int, int]]:
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = read_stat(int(entry.name))
            if stat:
                table[int(entry.name)] = stat
    return table


def descendants(root: int, table: dict[int, tuple[int, int]]) -> list[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (parent, _) in table.items():
        children[parent].append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            found.append(pid)
            todo.extend(children[pid])
    return found


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values[:8]) - idle, sum(values[:8])


def redis_pid(settings: Settings) -> int | None:
    """redis-server's pid as Redis reports it, if that process is on this machine."""
    import redis

    try:
        client = redis.Redis.from_url(settings.redis_url, socket_timeout=2)
        pid = int(client.info("server")["process_id"])
        client.close()
    except (redis.RedisError, KeyError, ValueError):
        return None
    return pid if Path(f"/proc/{pid}/stat").exists() else None


class ProcessSampler:
    """CPU% (of one core) and RSS of each process with its children, every few seconds."""

    def __init__(self, roots: dict[str, int], start: float, alone: tuple[str, ...] = ()) -> None:
        self.roots, self.start, self.alone = roots, start, alone  # alone: without children
        self.series: dict[str, list[dict[str, float]]] = {name: [] for name in roots}
        self.machine: list[dict[str, float]] = []
        self._last: dict[str, tuple[float, int]] = {}
        self._last_machine = machine_ticks()
        self._first_ticks: dict[str, int] = {}

    def sample(self) -> None:
        now, table = time.perf_counter(), process_table()
        for name, root in self.roots.items():
            pids = [root] if name in self.alone else descendants(root, table)
            ticks = sum(table[p][1] for p in pids)
            self._first_ticks.setdefault(name, ticks)
            previous = self._last.get(name)
            self._last[name] = (now, ticks)
            if previous is None:
                continue
            cpu = (ticks - previous[1]) / CLK_TCK / max(now - previous[0], 1e-6) * 100
            rss = sum(rss_kb(p) for p in pids) / 1024
            self.series[name].append(
                {"t": round(now - self.start, 2), "cpu_pct": round(cpu, 1), "rss_mb": round(rss, 1)}
            )
        busy, total = machine_ticks()
        last_busy, last_total = self._last_machine
        self._last_machine = (busy, total)
        share = (busy - last_busy) / max(total - last_total, 1) * 100
        self.machine.append({"t": round(now - self.start, 2), "busy_pct": round(share, 1)})

    def cpu_seconds(self, name: str) -> float:
        return (self._last.get(name, (0, 0))[1] - self._first_ticks.get(name, 0)) / CLK_TCK

    async def run(self, every: float, stop: asyncio.Event) -> None:
        self.sample()
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
            self.sample()


def memory_summary(series: list[dict[str, float]], duration: float) -> dict[str, Any]:
    """RSS at the start, after the first minute (a quarter of shorter runs) and at the end; growth in %."""
    during = [s for s in series if s["t"] <= duration + 1] or series
    if not during:
        return {}
    mark = min(60.0, duration / 4)
    baseline = min(during, key=lambda s: abs(s["t"] - mark))
    end = during[-1]
    cpu = [s["cpu_pct"] for s in during]
    return {
        "cpu_pct_mean": round(sum(cpu) / len(cpu), 1),
        "cpu_pct_max": max(cpu),
        "rss_mb_start": during[0]["rss_mb"],
        "rss_mb_baseline": baseline["rss_mb"],
        "baseline_at_s": baseline["t"],
        "rss_mb_end": end["rss_mb"],
        "rss_mb_max": max(s["rss_mb"] for s in during),
        "growth_pct": round((end["rss_mb"] - baseline["rss_mb"]) / max(baseline["rss_mb"], 1e-6) * 100, 1),
    }


# --- cold start, warm-up, profile ---------------------------------------------


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def timed_start(stack: Stack) -> dict[str, Any]:
    """Start the stack; seconds from launch until each health URL (and all of them) answers."""
    urls, ready = stack.health_urls(), {}
    stop = threading.Event()
    started = time.perf_counter()

    def poll() -> None:
        while not stop.is_set() and len(ready) < len(urls):
            for name, url in urls.items():
                if name not in ready and answers(url):
                    ready[name] = round(time.perf_counter() - started, 2)
            stop.wait(0.1)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    stack.start()
    returned = time.perf_counter() - started
    poller.join(timeout=5)
    stop.set()
    return {
        "all_healthy_s": max(ready.values()) if len(ready) == len(urls) else round(returned, 2),
        "per_process_s": ready,
        "target_s": COLD_START_TARGET_S,
    }


async def warm_up(run: Run) -> float | None:
    """The first answer after start (timed), then one question and greeting per language."""
    first = None
    for lang in LANGUAGES:
        customer = RestCustomer(run.http, run.settings.rasa_url, f"warmup-{run.tag}-{lang}")
        question, article = run.material.questions[lang][0]
        for u in (Utterance("kb_answer", question, lang, article), Utterance("small_talk", "hello", lang)):
            started = time.perf_counter()
            reply = await customer.say(u, 60)
            if first is None:
                first = round((reply.arrived - started) * 1000, 1) if reply.error is None else None
    return first


async def timed_post(http: aiohttp.ClientSession, url: str, body: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    async with http.post(url, json=body) as r:
        data = await r.json(content_type=None)
        r.raise_for_status()
    return (time.perf_counter() - started) * 1000, data


async def profile(run: Run) -> dict[str, Any]:
    """One knowledge-base answer, sequentially on the idle stack: NLU alone, the whole REST turn, the action."""
    s, http, n = run.settings, run.http, run.options.profile_samples
    token = f"?token={quote(s.rasa_token)}"
    actions_url = f"http://{s.host}:{s.action_server_port}"
    rng = random.Random(run.options.seed)
    pool = [(q, a, lang) for lang in LANGUAGES for q, a in run.material.questions[lang]]
    picked = rng.sample(pool, min(len(pool), 2 * n))
    async with http.get(s.rasa_url + "/domain" + token, headers={"Accept": "application/json"}) as r:
        domain = await r.json()
    floor, parse, turn, action, tracker_bytes = [], [], [], [], []
    for _ in range(n):
        started = time.perf_counter()
        async with http.get(s.rasa_url + "/webhooks/rest/") as r:
            await r.read()
        floor.append((time.perf_counter() - started) * 1000)
    for text, _, _ in picked[:n]:  # other questions than the turns below: nothing is warm for them
        parse.append((await timed_post(http, s.rasa_url + "/model/parse" + token, {"text": text}))[0])
    for text, _, lang in picked[n:]:
        sender = f"profile-{run.tag}-{lang}"
        body = {"sender": sender, "message": text, "metadata": {"language": lang}}
        turn.append((await timed_post(http, s.rasa_url + "/webhooks/rest/webhook", body))[0])
        async with http.get(f"{s.rasa_url}/conversations/{quote('rest:' + sender, safe='')}/tracker{token}") as r:
            tracker = await r.json()
        tracker_bytes.append(len(json.dumps(tracker)))
        request = {
            "next_action": "action_kb_answer",
            "sender_id": "rest:" + sender,
            "tracker": tracker,
            "domain": domain,
            "version": version("rasa"),
        }
        action.append((await timed_post(http, actions_url + "/webhook", request))[0])
    result = {
        "http_floor_ms": percentiles(floor),
        "nlu_parse_ms": percentiles(parse),
        "rest_turn_ms": percentiles(turn),
        "action_server_ms": percentiles(action),
        "tracker_json_bytes_max": max(tracker_bytes, default=0),
    }
    if parse and turn and action:
        rest = result["rest_turn_ms"]["p50"] - result["nlu_parse_ms"]["p50"] - result["action_server_ms"]["p50"]
        result["rest_of_turn_p50_ms"] = round(rest, 1)
    return result


# --- measuring ---------------------------------------------------------------


async def drain_console(ws: aiohttp.ClientWebSocketResponse) -> None:
    """A logged-in console stays open during the run, as at a real desk; its updates are read and dropped."""
    async for _ in ws:
        pass


async def measure(stack: Stack, options: Options) -> dict[str, Any]:
    settings = stack.settings
    base = f"http://{settings.host}:{settings.agent_service_port}"
    material = load_material(settings)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        token = await agent_token(http, base, settings)
        console = await http.ws_connect(base + "/api/ws", headers={"Authorization": f"Bearer {token}"})
        console_task = asyncio.create_task(drain_console(console))
        run = Run(options, settings, material, http, AgentApi(http, base, token, options.timeout), time.perf_counter())
        first_answer_ms = await warm_up(run)
        profiled = await profile(run) if options.profile else None
        roots = {name: stack.processes[name].pid for name in STACK_PROCESSES}
        pid = redis_pid(settings)
        if pid:
            roots["redis-server"] = pid
        roots[LOAD_GENERATOR] = os.getpid()  # the stack's processes are its children: counted alone
        run.start = time.perf_counter()
        sampler, stop = ProcessSampler(roots, run.start, alone=(LOAD_GENERATOR,)), asyncio.Event()
        background = [
            asyncio.create_task(sampler.run(options.sample_every, stop)),
            asyncio.create_task(show_progress(run)),
        ]
        await asyncio.gather(*(customer_loop(run, i) for i in range(options.customers)))
        elapsed = time.perf_counter() - run.start
        stop.set()
        await asyncio.gather(*background)
        if run.leaving:
            await asyncio.wait(run.leaving, timeout=30)
        await console.close()
        console_task.cancel()
    return summarise(run, sampler, elapsed, first_answer_ms, profiled)


def summarise(
    run: Run, sampler: ProcessSampler, elapsed: float, first_answer_ms: float | None, profiled: dict[str, Any] | None
) -> dict[str, Any]:
    duration = run.options.duration
    messages = [s for s in run.samples if s.kind in KINDS]
    answered = [s for s in messages if s.t <= duration]
    errors = [s for s in run.samples if s.error]
    latency = {
        k: percentiles([s.latency_ms for s in messages if s.kind == k and s.latency_ms is not None]) for k in KINDS
    }
    by_channel = {
        k: {
            c: percentiles([s.latency_ms for s in messages if s.kind == k and s.channel == c and s.latency_ms])
            for c in ("rest", "webchat")
        }
        for k in KINDS
    }
    sessions = [s.latency_ms for s in run.samples if s.kind == SESSION_KIND and s.latency_ms is not None]
    processes = {name: memory_summary(series, duration) for name, series in sampler.series.items()}
    for name in processes:
        processes[name]["cpu_ms_per_message"] = round(sampler.cpu_seconds(name) * 1000 / max(len(messages), 1), 1)
    busy = [m["busy_pct"] for m in sampler.machine[1:]]
    return {
        "first_answer_ms": first_answer_ms,
        "elapsed_s": round(elapsed, 1),
        "latency_ms": latency,
        "latency_ms_by_channel": by_channel,
        "webchat_session_ms": percentiles(sessions),
        "throughput": throughput(answered, duration),
        "errors": {
            "total": len(errors),
            "by_error": dict(Counter(s.error for s in errors).most_common()),
            "by_kind": dict(Counter(s.kind for s in errors).most_common()),
            "examples": [  # failures first
                f"{s.kind} {s.channel} {s.error}: {s.detail}"
                for s in sorted(errors, key=lambda s: s.error in QUALITY_ERRORS)
            ][:30],
        },
        "behind_schedule": sum(p.late for p in run.pacers) if run.options.rate else None,
        "processes": processes,
        "machine_cpu_busy_pct": {
            "mean": round(sum(busy) / len(busy), 1) if busy else None,
            "max": max(busy, default=None),
        },
        "profile": profiled,
        "timeline": timeline(messages, duration),
        "process_samples": sampler.series,
        "machine_samples": sampler.machine,
    }


def throughput(answered: list[Sample], duration: float, window: float = 10.0) -> dict[str, Any]:
    counts = Counter(s.kind for s in answered)
    windows = Counter(int(s.t // window) for s in answered)
    full = int(duration // window)
    lowest = min((windows.get(i, 0) / window for i in range(full)), default=None)
    return {
        "messages": len(answered),
        "per_s": round(len(answered) / duration, 2),
        "per_kind_per_s": {k: round(counts.get(k, 0) / duration, 2) for k in KINDS},
        "lowest_window_per_s": lowest,
        "window_s": window,
    }


def timeline(messages: list[Sample], duration: float) -> dict[str, Any]:
    width = 5.0 if duration >= 100 else max(1.0, round(duration / 20))
    bins = int(duration // width) + 1
    out: dict[str, Any] = {"bin_s": width, "t": [round((i + 0.5) * width, 1) for i in range(bins)]}
    grouped: dict[tuple[str, int], list[Sample]] = defaultdict(list)
    for s in messages:
        grouped[s.kind, min(int(s.t // width), bins - 1)].append(s)
    for kind in KINDS:
        rows = [grouped.get((kind, i), []) for i in range(bins)]
        out[f"{kind}_per_s"] = [round(len(r) / width, 2) for r in rows]
        for q in ("p50", "p95"):
            out[f"{kind}_{q}_ms"] = [percentiles([s.latency_ms for s in r if s.latency_ms]).get(q) for r in rows]

    def failures(i: int) -> int:
        return sum(1 for k in KINDS for s in grouped.get((k, i), []) if s.error and s.error not in QUALITY_ERRORS)

    out["failures_per_s"] = [round(failures(i) / width, 2) for i in range(bins)]
    return out


# --- targets and report ---------------------------------------------------------


def judged(label: str, value: float | None, target: float, unit: str, at_most: bool, note: str = "") -> dict[str, Any]:
    if value is None:
        outcome = "not measured"
    else:
        miss = value - target if at_most else target - value
        ok = value <= target if at_most else value >= target
        outcome = "met" if ok else f"missed by {miss:.1f} {unit}".rstrip()
    bound = "≤" if at_most else "≥"
    return {
        "target": label,
        "bound": f"{bound} {target:g} {unit}".rstrip(),
        "value": value,
        "verdict": outcome,
        "note": note,
    }


def targets(results: dict[str, Any], options: Options) -> list[dict[str, Any]]:
    kb = results["latency_ms"]["kb_answer"]
    at = "" if options.customers == TARGET_CUSTOMERS else f"measured with {options.customers} customers, not 20"
    growth = [results["processes"].get(n, {}).get("growth_pct") for n in STACK_PROCESSES]
    growth = [g for g in growth if g is not None]
    wrong = sum(v for k, v in results["errors"]["by_error"].items() if k in QUALITY_ERRORS)
    errors = results["errors"]["total"] - wrong
    if not options.rate:  # closed loop: every customer always waits, so latency = customers / throughput
        at = "; ".join(filter(None, [at, "closed loop: the latency is mostly queueing, judge it with --rate"]))
    rows = [
        judged("knowledge-base answer, median", kb.get("p50"), TARGETS["kb_p50_ms"], "ms", True, at),
        judged("knowledge-base answer, 95th percentile", kb.get("p95"), TARGETS["kb_p95_ms"], "ms", True, at),
        judged("throughput, messages per second", results["throughput"]["per_s"], TARGETS["per_s"], "msg/s", False),
        judged("sustained for", options.duration, TARGETS["duration_s"], "s", False),
        judged("errors", errors, 0, "errors", True),
        judged(
            "memory growth, first minute → end (rasa, actions, agent-service)",
            max(growth) if growth else None,
            TARGETS["growth_pct"],
            "%",
            True,
            "Redis is listed below: it grows with the conversations it stores",
        ),
        judged(
            "cold start with a trained model", results["cold_start"]["all_healthy_s"], COLD_START_TARGET_S, "s", True
        ),
    ]
    rows[2]["note"] = (
        f"lowest {results['throughput']['window_s']:g} s window: {results['throughput']['lowest_window_per_s']}"
    )
    rows[4]["note"] = (
        "HTTP errors, timeouts, no answer, the bot failing open; not counted: "
        f"{wrong} answers with another article than the question's own (quality: bot/assistant eval)"
    )
    return rows


def _ms(value: Any) -> str:
    return "—" if value is None else f"{value}"


def header_section(results: dict[str, Any]) -> list[str]:
    run, o = results["run"], results["run"]["settings"]
    dirty = " (with uncommitted changes)" if run["uncommitted_changes"] else ""
    before = ", ".join(map(str, run["machine"]["load_average_before"]))
    return [
        "# Load benchmark",
        "",
        f"`{run['command']}` at commit {run['commit']}{dirty}, {run['date']}, on {run['machine']['cpus']} CPU cores"
        f"{', ' + run['machine']['processor'] if run['machine'].get('processor') else ''} "
        f"(load average before: {before}; machine busy during the run: {results['machine_cpu_busy_pct']['mean']}% "
        "of all cores on average, this load generator included). "
        f"Machine speed: `sum(range(10**6))` takes {run['machine'].get('python_loop_ms', '?')} ms "
        "(best of 5, before the run; compare runs on different machines with it).",
        "",
        f"{o['customers']} customers ({o['webchat_customers']} on the socket.io web chat, the rest on the REST "
        f"webhook), {o['duration']:g} s, {o['mode']}; {o['handoff_share']:.0%} of conversations ask for a person "
        f"({o['agent_replies']} agent replies each on web chat); answer timeout {o['timeout']:g} s.",
    ]


def targets_section(results: dict[str, Any]) -> list[str]:
    lines = ["", "## Targets (issue 7)", "", "| target | bound | measured | verdict |", "|---|---|---|---|"]
    for t in results["targets"]:
        note = f" ({t['note']})" if t["note"] else ""
        lines.append(f"| {t['target']} | {t['bound']} | {_ms(t['value'])} | {t['verdict']}{note} |")
    return lines


def latency_section(results: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## Latency per message kind (ms)",
        "",
        "From the moment a message fell due (open loop; or was sent, when its customer was still busy with the "
        "last turn) or was sent (closed loop) to the answer at the customer;",
        "agent_reply: from the agent's POST to the web chat customer receiving it.",
        "",
        "| kind | n | p50 | p95 | p99 | max | mean | per s | REST p50 | web chat p50 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    per_kind = results["throughput"]["per_kind_per_s"]
    for kind, p in results["latency_ms"].items():
        rest, webchat = (results["latency_ms_by_channel"][kind][c].get("p50") for c in ("rest", "webchat"))
        cells = [p["n"], *(_ms(p.get(q)) for q in ("p50", "p95", "p99", "max", "mean")), per_kind[kind]]
        lines.append(f"| {kind} | " + " | ".join(map(str, cells)) + f" | {_ms(rest)} | {_ms(webchat)} |")
    session, tp = results["webchat_session_ms"], results["throughput"]
    lines += [
        "",
        f"Throughput: {tp['messages']} messages answered in {results['run']['settings']['duration']:g} s = "
        f"**{tp['per_s']} msg/s** (lowest {tp['window_s']:g} s window: {tp['lowest_window_per_s']}). Opening a web "
        f"chat session (socket.io connect + signed session): p50 {_ms(session.get('p50'))} ms, "
        f"p95 {_ms(session.get('p95'))} ms.",
    ]
    if results["behind_schedule"] is not None:
        lines.append(f"Messages sent more than 100 ms after they fell due: {results['behind_schedule']}.")
    return lines


def errors_section(results: dict[str, Any]) -> list[str]:
    errors = results["errors"]
    by_error = errors["by_error"]
    failures = sum(v for k, v in by_error.items() if k not in QUALITY_ERRORS)
    quality = errors["total"] - failures
    lines = [
        "",
        "## Errors and other answers",
        "",
        f"{failures} failures (the stack did not answer, or failed open to people) and {quality} answers other than "
        "the one the question expects: another article, or a handoff. Those are the bot's understanding, the same "
        "without load; `bot/assistant eval` measures it on questions written for the purpose.",
    ]
    if errors["total"]:
        lines += ["", "| error | count |", "|---|---|"] + [f"| {k} | {v} |" for k, v in by_error.items()]
        lines += ["", "By message kind: " + ", ".join(f"{k} {v}" for k, v in errors["by_kind"].items()) + "."]
        lines += ["", "First ones (kind, channel, error: what was said → what came back):", ""]
        lines += [f"- `{e[:200]}`" for e in errors["examples"][:10]]
    return lines


def processes_section(results: dict[str, Any]) -> list[str]:
    every = results["run"]["settings"]["sample_every"]
    lines = [
        "",
        "## Processes (each with its children)",
        "",
        f"CPU in % of one core, sampled every {every:g} s; memory growth from the sample nearest the end of the "
        "first minute (a quarter of a shorter run) to the last sample.",
        "",
        "| process | CPU mean % | CPU max % | CPU ms per message | RSS start MB | RSS baseline MB | RSS end MB "
        "| growth % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, p in results["processes"].items():
        if p:
            baseline = f"{p['rss_mb_baseline']} (at {p['baseline_at_s']:g} s)"
            cells = [p["cpu_pct_mean"], p["cpu_pct_max"], p["cpu_ms_per_message"], p["rss_mb_start"], baseline]
            lines.append(f"| {name} | " + " | ".join(map(str, [*cells, p["rss_mb_end"], p["growth_pct"]])) + " |")
    return lines


def cold_start_section(results: dict[str, Any]) -> list[str]:
    cold = results["cold_start"]
    each = ", ".join(f"{k} {v} s" for k, v in cold["per_process_s"].items())
    return [
        "",
        "## Cold start",
        "",
        "From launching the processes (model already trained) to every health URL answering: "
        f"**{cold['all_healthy_s']} s** ({each}). The first answer after that took "
        f"{_ms(results['first_answer_ms'])} ms. The operating system's file cache was warm (earlier runs).",
    ]


def profile_table(p: dict[str, Any]) -> list[str]:
    rows = [
        ("HTTP round trip to the Rasa server (GET /webhooks/rest/)", p["http_floor_ms"]),
        ("NLU alone: POST /model/parse (language, embedding, intent, retrieval)", p["nlu_parse_ms"]),
        ("action server alone: action_kb_answer on the same tracker", p["action_server_ms"]),
        ("the whole REST turn: POST /webhooks/rest/webhook", p["rest_turn_ms"]),
    ]
    return [
        f"One request at a time, before the load, no other customers ({p['rest_turn_ms']['n']} questions per path;"
        " other programs on the machine still count):",
        "",
        "| path | p50 ms | p95 ms |",
        "|---|---|---|",
        *(f"| {label} | {_ms(r.get('p50'))} | {_ms(r.get('p95'))} |" for label, r in rows),
        "| rest of the turn (policies, tracker and lock in Redis, event broker, channel): difference of the "
        "medians above, noisy on a busy machine | "
        f"{_ms(p.get('rest_of_turn_p50_ms'))} | — |",
        "",
        f"Largest tracker during the profile: {p['tracker_json_bytes_max']} bytes of JSON (Rasa's Redis tracker "
        "store reads, merges and rewrites the whole tracker on every turn, with the blocking redis client).",
    ]


def profile_section(results: dict[str, Any]) -> list[str]:
    lines = ["", "## Where the time of one knowledge-base answer goes", ""]
    p = results.get("profile")
    if p:
        lines += profile_table(p)
    else:
        lines.append("Run with `--profile` to time /model/parse, the action server and the whole turn separately.")
    rasa = results["processes"].get("rasa")
    if rasa:
        workers = results["run"].get("rasa_workers", 1)
        ceiling = min(workers, int(cpu_count())) * 1000 / max(rasa["cpu_ms_per_message"], 1e-6)
        lines += [
            "",
            f"Under load the Rasa server ({workers} worker processes) used {rasa['cpu_ms_per_message']} ms of CPU "
            f"per message answered (mean {rasa['cpu_pct_mean']}% of one core, all workers). Each worker understands "
            f"messages in one event loop, on at most one core, so at that cost the workers cannot answer more than "
            f"about {ceiling:.0f} messages per second on this machine, the other processes aside.",
        ]
    return lines


def logs_section(results: dict[str, Any]) -> list[str]:
    found = {name: f for name, f in (results.get("log_problems") or {}).items() if f["count"]}
    if not found:
        return []
    lines = ["", "## Problems in the processes' logs", ""]
    for name, f in found.items():
        for source, count in f["by_source"].items():
            lines.append(f"- {name}, {source}: {count} lines, e.g. `{f['examples'][source][:300]}`")
    return lines


def markdown(results: dict[str, Any]) -> str:
    sections = (
        header_section,
        targets_section,
        latency_section,
        errors_section,
        processes_section,
        cold_start_section,
        profile_section,
        logs_section,
    )
    lines = [line for section in sections for line in section(results)]
    return "\n".join([*lines, "", "![latency, throughput and CPU over time](load.png)", ""])


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tl = results["timeline"]
    fig, (lat, tput, cpu) = plt.subplots(3, 1, figsize=(10, 10), sharex=True)
    for kind, style in zip(KINDS, ("-", "--", ":", "-."), strict=True):
        lat.plot(tl["t"], tl[f"{kind}_p50_ms"], style, marker=".", label=f"{kind} p50")
    lat.plot(tl["t"], tl["kb_answer_p95_ms"], "-", marker=".", color="black", alpha=0.5, label="kb_answer p95")
    lat.axhline(TARGETS["kb_p50_ms"], color="green", lw=0.8, ls=":")
    lat.axhline(TARGETS["kb_p95_ms"], color="red", lw=0.8, ls=":")
    lat.set_ylabel("latency, ms")
    lat.set_yscale("log")
    lat.legend(fontsize=8, ncol=3, loc="upper left")
    lat.set_title(
        f"bench load: {results['run']['settings']['customers']} customers, {results['run']['settings']['mode']}, "
        f"commit {results['run']['commit']}"
    )
    tput.stackplot(tl["t"], *[tl[f"{k}_per_s"] for k in KINDS], labels=KINDS, step="mid", alpha=0.8)
    tput.plot(tl["t"], tl["failures_per_s"], color="red", label="failures")
    tput.axhline(TARGETS["per_s"], color="black", lw=0.8, ls=":")
    tput.set_ylabel(f"messages/s ({tl['bin_s']:g} s bins)")
    tput.legend(fontsize=8, ncol=5, loc="upper left")
    for name, series in results["process_samples"].items():
        cpu.plot([s["t"] for s in series], [s["cpu_pct"] for s in series], label=name)
    cpu.plot(
        [m["t"] for m in results["machine_samples"]],
        [m["busy_pct"] for m in results["machine_samples"]],
        "k:",
        label="machine (% of all cores)",
    )
    cpu.set_ylabel("CPU, % of one core")
    cpu.set_xlabel("seconds into the load")
    cpu.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_report(results: dict[str, Any], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "load.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    text = markdown(results)
    (out_dir / "load.md").write_text(text)
    plot(results, out_dir / "load.png")
    print(text.split("## Processes")[0])


ANSI = re.compile(r"\x1b\[[0-9;]*m")
LOG_SOURCE = re.compile(r"(ERROR|WARNING)\s+([\w.]+)")


def log_problems(log_dir: Path) -> dict[str, dict[str, Any]]:
    """Lines with ERROR or a traceback in each process's log, counted by logger, as evidence for the report."""
    found = {}
    for log in sorted(log_dir.glob("*.log")):
        lines = [ANSI.sub("", line).strip() for line in log.read_text(errors="replace").splitlines()]
        bad = [line for line in lines if " ERROR " in line or line.startswith("Traceback")]
        sources = Counter((m.group(2) if (m := LOG_SOURCE.search(line)) else "traceback") for line in bad)
        examples = {}
        for line in bad:
            m = LOG_SOURCE.search(line)
            examples.setdefault(m.group(2) if m else "traceback", line[:400])
        found[log.stem] = {"count": len(bad), "by_source": dict(sources), "examples": examples}
    return found


def main(argv: list[str]) -> int:
    options = parse_options(argv)
    load_before, loop_ms = load_average(), python_loop_ms()
    with tempfile.TemporaryDirectory() as tmp:
        settings = bench_settings(Path(tmp))
        stack = Stack(settings, ensure_trained(settings, process_env(settings)), Path(tmp) / "logs")
        try:
            cold = timed_start(stack)
            results = asyncio.run(measure(stack, options))
        finally:
            stack.stop()
            cleanup(settings)
        results["log_problems"] = log_problems(Path(tmp) / "logs")
    results["cold_start"] = cold
    results["run"] = {
        "command": "bot/assistant bench load " + " ".join(argv),
        "commit": commit(PROJECT_DIR),
        "uncommitted_changes": uncommitted_changes(PROJECT_DIR),
        "date": utc_now(),
        "machine": {
            "cpus": cpu_count(),
            "processor": processor(),
            "python_loop_ms": loop_ms,
            "load_average_before": load_before,
            "load_average_after": load_average(),
        },
        "settings": options.as_dict(),
        "rasa_model": stack.model.name,
        "rasa_workers": settings.rasa_workers,
    }
    results["targets"] = targets(results, options)
    write_report(results, options.out)
    return 0
