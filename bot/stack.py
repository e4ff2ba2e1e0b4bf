"""Setting up and running the whole assistant: Redis, model, training, processes.

Used by `bot/assistant up` and by the end-to-end tests, so both run the same thing.
Every step is done once and reused, keyed by what it depends on.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlparse

from bot.channels.meta_config import CHANNEL_VARIABLES
from bot.settings import PROJECT_DIR, Settings

TRAINING_INPUTS = ("config.yml", "domain.yml", "nlu_data", "bot/components", "bot/language.py", "pyproject.toml")
SECRETS = ("RASA_TOKEN", "WEBCHAT_SESSION_SECRET")


def log(message: str) -> None:
    print(f"==> {message}", flush=True)


# --- secrets -----------------------------------------------------------------


def with_secrets(settings: Settings) -> Settings:
    """Fill unset tokens from .state/secrets.json, generating them the first time."""
    path = settings.state_dir / "secrets.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    for name in SECRETS:
        stored.setdefault(name, secrets.token_urlsafe(32))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(stored, indent=2))
    path.chmod(0o600)
    return replace(
        settings,
        rasa_token=settings.rasa_token or stored["RASA_TOKEN"],
        webchat_session_secret=settings.webchat_session_secret or stored["WEBCHAT_SESSION_SECRET"],
    )


# --- Redis -------------------------------------------------------------------


def redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def redis_persists(url: str) -> bool:
    """Whether the Redis at `url` writes an append-only file or snapshots (True when it will not say)."""
    import redis

    try:
        config = redis.Redis.from_url(url, socket_connect_timeout=2, decode_responses=True).config_get("*")
    except redis.RedisError:  # CONFIG may be renamed or forbidden on a managed Redis
        return True
    return config.get("appendonly") == "yes" or bool(config.get("save", "").strip())


def ensure_redis(settings: Settings) -> None:
    """Reuse a Redis that answers; otherwise start (and if needed install) a local one."""
    if redis_answers(settings.redis_url):
        log(f"Redis answers at {settings.redis_url}")
        if not redis_persists(settings.redis_url):
            log(
                "warning: this Redis keeps nothing on disk (appendonly no, no snapshots): if it restarts, "
                "conversations, escalations and agents' accounts are lost. Turn on persistence "
                "(redis-cli config set appendonly yes; README: 'Redis must keep what it acknowledged')"
            )
        return
    url = urlparse(settings.redis_url)
    if url.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"error: Redis at {settings.redis_url} does not answer; start it or set REDIS_URL")
    server = shutil.which("redis-server")
    if server is None:
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            raise SystemExit("error: redis-server is not installed; install it (apt-get install redis-server)")
        log("installing redis-server with apt-get")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "redis-server"], check=True)
        server = shutil.which("redis-server") or "/usr/bin/redis-server"
    data_dir = settings.cache_dir / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    log(f"starting redis-server on port {url.port or 6379} (append-only file in {data_dir})")
    subprocess.run(
        [
            server,
            "--daemonize",
            "yes",
            "--bind",
            url.hostname or "127.0.0.1",
            "--port",
            str(url.port or 6379),
            "--appendonly",
            "yes",
            "--dir",
            str(data_dir),
            "--logfile",
            str(data_dir / "redis.log"),
        ],
        check=True,
    )
    for _ in range(50):
        if redis_answers(settings.redis_url):
            return
        time.sleep(0.1)
    raise SystemExit(f"error: started redis-server but it does not answer; see {data_dir / 'redis.log'}")


# --- embedding model, index, training ---------------------------------------


def ensure_model_and_index(settings: Settings) -> None:
    from bot.embeddings.encoder import backend_for, get_encoder
    from bot.kb.index import index_cache_path, load_or_build_index

    backend = backend_for(settings)
    log(f"embedding model: {backend.location}, backend {backend.name}")
    if backend.onnx_dir and not backend.onnx_dir.exists():
        log(f"exporting it to ONNX in {backend.onnx_dir} (about a minute)")
    encoder = get_encoder(settings)
    cached = index_cache_path(settings.cache_dir, settings.articles_dir, encoder).exists()
    index = load_or_build_index(settings.articles_dir, encoder, settings.cache_dir)
    state = "reused" if cached else "built"
    log(f"knowledge-base index: {len(index.texts)} titles and questions, {len(index.body_vectors)} bodies ({state})")


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def training_key(settings: Settings) -> str:
    """Changes when training data, config, our components or the embedding model or its backend change."""
    from bot.embeddings.encoder import backend_for

    # The intent classifier learns on the vectors of one backend: it is served with the same one.
    digest = hashlib.sha256(backend_for(settings).identity.encode())
    for name in TRAINING_INPUTS:
        for path in _files(settings.project_dir / name):
            digest.update(str(path.relative_to(settings.project_dir)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def ensure_trained(settings: Settings, env: dict[str, str]) -> Path:
    """The Rasa model for the current inputs, trained only if none exists yet."""
    key = training_key(settings)
    models = settings.cache_dir / "rasa-models"
    model = models / f"{key}.tar.gz"
    if model.exists():
        log(f"Rasa model up to date ({model.name})")
        return model
    log("training the Rasa model (about a minute)")
    models.mkdir(parents=True, exist_ok=True)
    out = models / f"partial-{os.getpid()}"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "rasa",
            "train",
            "--config",
            "config.yml",
            "--domain",
            "domain.yml",
            "--data",
            "nlu_data",
            "--out",
            str(out),
            "--fixed-model-name",
            key,
        ],
        cwd=settings.project_dir,
        env=env,
        check=True,
    )
    (out / f"{key}.tar.gz").rename(model)
    shutil.rmtree(out, ignore_errors=True)
    return model


# --- processes ---------------------------------------------------------------


def process_env(settings: Settings) -> dict[str, str]:
    """The environment every process gets: our settings plus what endpoints.yml reads."""
    url = urlparse(settings.redis_url)
    env = dict(os.environ)
    env.update(
        {
            "PYTHONPATH": str(PROJECT_DIR) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""),
            "SUPPORTBOT_CACHE_DIR": str(settings.cache_dir),
            "SUPPORTBOT_EMBEDDING_MODEL": settings.embedding_model,
            "SUPPORTBOT_EMBEDDING_BACKEND": settings.embedding_backend,
            "SUPPORTBOT_ARTICLES_DIR": str(settings.articles_dir),
            "SUPPORTBOT_BUSINESS_HOURS": str(settings.business_hours_file),
            "SUPPORTBOT_THRESHOLDS": str(settings.thresholds_file),
            "SUPPORTBOT_HOST": settings.host,
            "SUPPORTBOT_REDIS_PREFIX": settings.redis_prefix,
            "SUPPORTBOT_RATE_LIMIT": settings.rate_limit,
            "REDIS_URL": settings.redis_url,
            "REDIS_HOST": url.hostname or "127.0.0.1",
            "REDIS_PORT": str(url.port or 6379),
            "REDIS_DB": (url.path or "/0").lstrip("/") or "0",
            "REDIS_PASSWORD": url.password or "",
            "RASA_PORT": str(settings.rasa_port),
            "ACTION_SERVER_PORT": str(settings.action_server_port),
            "AGENT_SERVICE_PORT": str(settings.agent_service_port),
            "RASA_URL": settings.rasa_url,
            "PUBLIC_RASA_URL": settings.public_rasa_url,
            "RASA_TOKEN": settings.rasa_token,
            "AGENT_SESSION_HOURS": str(settings.agent_session_hours),
            "WEBCHAT_SESSION_SECRET": settings.webchat_session_secret,
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "TOKENIZERS_PARALLELISM": "false",
            "HF_HUB_OFFLINE": "1",
            "RASA_TELEMETRY_ENABLED": "false",
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
        }
    )
    for name in CHANNEL_VARIABLES:  # credentials.yml reads them; unset means the channel is off
        env.setdefault(name, "")
    return env


def serving_env(settings: Settings) -> dict[str, str]:
    """What the serving processes get on top of process_env: few threads per message (see Settings)."""
    threads = str(settings.threads_per_message)
    return {
        "SUPPORTBOT_THREADS_PER_MESSAGE": threads,
        "SUPPORTBOT_RASA_WORKERS": str(settings.rasa_workers),  # read by bot/rasa_server.py
        "OMP_NUM_THREADS": threads,  # torch's intra-op threads (the sentence embedding)
        "MKL_NUM_THREADS": threads,
        "TF_INTRA_OP_PARALLELISM_THREADS": threads,  # TensorFlow, which Rasa imports, reads these
        "TF_INTER_OP_PARALLELISM_THREADS": threads,
    }


@dataclass
class Stack:
    """The running assistant: Rasa server, action server and agent service."""

    settings: Settings
    model: Path
    log_dir: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # on top of process_env (tests: channel settings)

    def commands(self) -> dict[str, list[str]]:
        s = self.settings
        return {
            "actions": [sys.executable, "-m", "rasa_sdk", "--actions", "actions", "--port", str(s.action_server_port)],
            "rasa": [
                sys.executable,
                "-m",
                "bot.rasa_server",  # `rasa run` with compiled validators; the token from RASA_TOKEN
                "run",
                "--model",
                str(self.model),
                "--enable-api",
                "--port",
                str(s.rasa_port),
                "--interface",
                s.host,
                "--credentials",
                "credentials.yml",
                "--endpoints",
                "endpoints.yml",
                "--cors",
                "*",
            ],
            "agent-service": [sys.executable, "-m", "handoff.app"],
        }

    def health_urls(self) -> dict[str, str]:
        s = self.settings
        return {
            "actions": f"http://{s.host}:{s.action_server_port}/health",
            "rasa": f"http://{s.host}:{s.rasa_port}/webhooks/rest/",
            "agent-service": f"http://{s.host}:{s.agent_service_port}/health",
        }

    def start(self, names: tuple[str, ...] = ("actions", "rasa", "agent-service"), timeout: float = 240) -> None:
        env = {**process_env(self.settings), **serving_env(self.settings), **self.env}
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in names:
            out = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the process
            self.processes[name] = subprocess.Popen(
                self.commands()[name],
                cwd=self.settings.project_dir,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        for name in names:
            self.wait_healthy(name, timeout)

    def wait_healthy(self, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        url = self.health_urls()[name]
        while time.monotonic() < deadline:
            if self.processes[name].poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {self.processes[name].returncode}; see {self.log_dir / (name + '.log')}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        log(f"{name} is up ({url})")
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{name} did not answer {url} within {timeout:.0f} s; see {self.log_dir}")

    def stop(self, name: str | None = None) -> None:
        for key in [name] if name else list(self.processes):
            process = self.processes.pop(key, None)
            if process and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()

    def wait_any_exit(self) -> str:
        while True:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    return name
            time.sleep(0.5)


def on_free_ports(settings: Settings, **changes: object) -> Settings:
    """`settings` with free ports for Rasa, the action server and the agent service (tests, benchmarks)."""
    rasa_port = free_port()
    return replace(
        settings,
        rasa_port=rasa_port,
        rasa_url=f"http://127.0.0.1:{rasa_port}",
        action_server_port=free_port(),
        agent_service_port=free_port(),
        **changes,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0
