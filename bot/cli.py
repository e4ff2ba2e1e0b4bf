"""Command line of the project; run it through `bot/assistant <command>`.

up      set up what is missing and run the whole assistant
test    set up what the tests need and run them (extra arguments go to pytest)
setup   only set up (model, index, training), then exit
bench NAME [options]
        benchmarks against the real processes (handoff: escalation and reply latency;
        load: simulated customers; embedding: latency, memory and Recall@1 per backend)
eval [--quick] [--only SETS]
        measure understanding, retrieval and escalation on our held-out and
        development sets and the public sets (--quick: the development set only);
        writes docs/eval/report.md, results.json and plots
calibrate
        compute the knowledge-base thresholds from the articles' sample questions
        and nlu_data's out-of-scope examples; writes bot/config/thresholds.yml
create-agent USERNAME [--admin] [--name "Display Name"]
        create an agent account for the console (asks for the password;
        --password-stdin reads it from standard input)
kb validate|index|stale|try|gaps
        the knowledge-base editors' tools (bot/assistant kb --help); they start nothing
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time

from bot.settings import Settings
from bot.stack import (
    Stack,
    ensure_model_and_index,
    ensure_redis,
    ensure_trained,
    log,
    port_in_use,
    process_env,
    with_secrets,
)

CHROMIUM = "/usr/bin/chromium"


def setup(settings: Settings) -> Stack:
    settings = with_secrets(settings)
    ensure_redis(settings)
    ensure_model_and_index(settings)
    model = ensure_trained(settings, process_env(settings))
    return Stack(settings, model, settings.state_dir / "logs")


def up(settings: Settings) -> int:
    stack = setup(settings)
    s = stack.settings
    busy = [p for p in (s.rasa_port, s.action_server_port, s.agent_service_port) if port_in_use(s.host, p)]
    if busy:
        log(
            f"error: port(s) {busy} are in use; stop what runs there or set RASA_PORT, "
            "ACTION_SERVER_PORT, AGENT_SERVICE_PORT"
        )
        return 1
    # Stop the children on `kill` too, not only on Ctrl-C (they run in their own sessions).
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(0))
    try:
        stack.start()
        log(f"web chat: open http://{s.host}:{s.agent_service_port}/")
        log(
            f"agent console: http://{s.host}:{s.agent_service_port}/console "
            "(first admin: bot/assistant create-agent NAME --admin)"
        )
        log(f"REST channel: POST http://{s.host}:{s.rasa_port}/webhooks/rest/webhook")
        log(f"logs: {stack.log_dir}; Ctrl-C stops everything")
        return supervise(stack)
    except KeyboardInterrupt:
        log("stopping")
        return 0
    finally:
        stack.stop()


RESTARTS_ALLOWED = 5  # per process within RESTART_PERIOD_S; more means it cannot run: stop everything
RESTART_PERIOD_S = 300


def supervise(stack: Stack) -> int:
    """Start again a process that stops (the others keep serving: a stopped action server
    meanwhile fails open to people); give up when one keeps stopping."""
    restarts: dict[str, list[float]] = {}
    while True:
        name = stack.wait_any_exit()
        code = stack.processes[name].returncode
        now = time.monotonic()
        recent = [t for t in restarts.get(name, []) if now - t < RESTART_PERIOD_S] + [now]
        restarts[name] = recent
        log_file = stack.log_dir / f"{name}.log"
        if len(recent) > RESTARTS_ALLOWED:
            log(f"error: {name} stopped {len(recent)} times in {RESTART_PERIOD_S} s; see {log_file}; stopping the rest")
            return 1
        log(f"warning: {name} stopped (exit code {code}); starting it again (see {log_file})")
        stack.stop(name)
        try:
            stack.start((name,))
        except RuntimeError as error:
            log(f"warning: {error}")  # it exited again: the next round counts it


def ensure_chromium() -> None:
    if os.path.exists(CHROMIUM):
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SystemExit(f"error: {CHROMIUM} is missing; install Debian's chromium package")
    log("installing chromium with apt-get (browser tests)")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True)


def test(settings: Settings, pytest_args: list[str]) -> int:
    setup(settings)
    ensure_chromium()
    for ruff in (["check", "."], ["format", "--check", "."]):
        lint = subprocess.run([sys.executable, "-m", "ruff", *ruff], cwd=settings.project_dir)
        if lint.returncode:
            return lint.returncode
    validate = subprocess.run(
        [
            sys.executable,
            "-m",
            "rasa",
            "data",
            "validate",
            "--fail-on-warnings",
            "--config",
            "config.yml",
            "--domain",
            "domain.yml",
            "--data",
            "nlu_data",
        ],
        cwd=settings.project_dir,
        env=process_env(with_secrets(settings)),
    )
    if validate.returncode:
        return validate.returncode
    return subprocess.run([sys.executable, "-m", "pytest", *pytest_args], cwd=settings.project_dir).returncode


def create_agent(settings: Settings, argv: list[str]) -> int:
    import asyncio
    import getpass

    from bot.escalations import connect
    from handoff.accounts import AccountError, Accounts

    parser = argparse.ArgumentParser(prog="bot/assistant create-agent")
    parser.add_argument("username")
    parser.add_argument("--admin", action="store_true", help="may reassign conversations and manage agents")
    parser.add_argument("--name", default="", help="the name customers see (default: the username)")
    parser.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    args = parser.parse_args(argv)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            log("error: the passwords differ")
            return 1
    ensure_redis(settings)

    async def create() -> str:
        redis = connect(settings.redis_url)
        try:
            accounts = Accounts(redis, settings.redis_prefix, int(settings.agent_session_hours * 3600))
            account = await accounts.create(args.username, password, "admin" if args.admin else "agent", args.name)
            return f"{account.role} {account.username!r} created; log in at /console"
        finally:
            await redis.close()

    try:
        log(asyncio.run(create()))
    except AccountError as exc:
        log(f"error: {exc}")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["kb"]:  # before the parser below, so that `kb ... --help` is the editors' help
        from bot.kb.editor import main as kb

        return kb(argv[1:])
    parser = argparse.ArgumentParser(
        prog="bot/assistant", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=("up", "test", "setup", "create-agent", "bench", "eval", "calibrate", "kb"))
    args, rest = parser.parse_known_args(argv)
    settings = Settings.from_env()
    if args.command == "up":
        return up(settings)
    if args.command == "test":
        return test(settings, rest)
    if args.command == "create-agent":
        return create_agent(settings, rest)
    if args.command == "bench":
        from bot.bench import main as bench

        setup(settings)
        return bench(rest)
    if args.command == "eval":
        from bot.eval.command import main as evaluate

        os.environ.update(process_env(settings))  # the model is loaded in this process
        ensure_model_and_index(settings)
        return evaluate(settings, ensure_trained(settings, process_env(settings)), rest)
    if args.command == "calibrate":
        from bot.eval.calibrate import main as calibrate

        os.environ.update(process_env(settings))
        ensure_model_and_index(settings)
        return calibrate(settings, rest)
    setup(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
