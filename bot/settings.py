"""One settings object, read from the environment, with documented defaults.

Every process (Rasa components, action server, agent service, CLI) builds its
settings here and passes them on; nothing else reads os.environ.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
LANGUAGES = ("en", "pl", "ro", "ru")
DEFAULT_EMBEDDING_MODEL = "multilingual-e5-small"  # rebuilt offline at setup
EMBEDDING_BACKENDS = ("onnx-int8", "onnx", "torch")


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "supportbot"


@dataclass(frozen=True)
class Settings:
    project_dir: Path = PROJECT_DIR
    cache_dir: Path = field(default_factory=_default_cache_dir)
    # "multilingual-e5-small" (default, built at setup), a folder, or any
    # sentence-transformers model name (needs internet the first time).
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    # How the model runs: "onnx" (onnxruntime, float32), "onnx-int8" (onnxruntime, int8
    # weights) or "torch" (sentence-transformers). The ONNX files are exported from the
    # model at setup; changing the backend retrains. The default is the fastest backend whose
    # held-out KB Recall@1 stays within a point of torch's in every language
    # (`bot/assistant bench embedding`, docs/bench/embedding.md): onnx-int8, which quantises
    # only the MatMuls (bot/embeddings/onnx_export.py).
    embedding_backend: str = "onnx-int8"
    articles_dir: Path = PROJECT_DIR / "kb_articles"
    business_hours_file: Path = PROJECT_DIR / "bot" / "config" / "business_hours.yml"
    thresholds_file: Path = PROJECT_DIR / "bot" / "config" / "thresholds.yml"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "supportbot"  # letters and digits only (Rasa's Redis stores require it)
    rasa_port: int = 5005
    action_server_port: int = 5055
    agent_service_port: int = 8080
    host: str = "127.0.0.1"
    rasa_url: str = "http://127.0.0.1:5005"
    public_rasa_url: str = ""  # where browsers reach Rasa's socket.io; empty: same host, rasa_port
    rasa_token: str = ""
    agent_session_hours: float = 8.0  # an agent's login lasts this long
    webchat_session_secret: str = ""
    # At most this many customer messages per conversation in this many seconds ("0": no limit).
    rate_limit: str = "30/60"
    # Threads each serving process gives torch and TensorFlow for one message. More than
    # one makes every message slower as soon as two messages (or anything else) share
    # the cores: `bot/assistant bench load` measured 578 ms of Rasa CPU per message with
    # the default threads, 137 ms with one, on a busy 2-core machine (README "Speed figures").
    threads_per_message: int = 1
    # Rasa server processes on the one port (bot/rasa_server.py), sharing the tracker and
    # lock stores in Redis. Rasa answers in one event loop per process: one used about one
    # core and capped `bench load` at ~39 msg/s on this 2-core machine, two reached ~65.
    rasa_workers: int = 2

    @property
    def rate_limit_window(self) -> tuple[int, float] | None:
        """(messages, seconds), or None when there is no limit."""
        if self.rate_limit.strip() in ("", "0"):
            return None
        try:
            messages, seconds = self.rate_limit.split("/")
            limit = (int(messages), float(seconds))
        except ValueError:
            limit = (0, 0.0)
        if limit[0] < 1 or limit[1] <= 0:
            raise ValueError(
                f"SUPPORTBOT_RATE_LIMIT must be like 30/60 (messages/seconds) or 0, got {self.rate_limit!r}"
            )
        return limit

    @property
    def state_dir(self) -> Path:
        """Per-checkout runtime files (generated secrets, logs)."""
        return self.project_dir / ".state"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        defaults = cls()

        def get(name: str, default: object) -> str:
            return env.get(name) or str(default)

        rasa_port = int(get("RASA_PORT", defaults.rasa_port))
        rasa_workers = int(get("SUPPORTBOT_RASA_WORKERS", defaults.rasa_workers))
        if rasa_workers < 1:
            raise ValueError("SUPPORTBOT_RASA_WORKERS must be 1 or more")
        prefix = get("SUPPORTBOT_REDIS_PREFIX", defaults.redis_prefix)
        if not prefix.isalnum():
            raise ValueError(f"SUPPORTBOT_REDIS_PREFIX must be letters and digits only, got {prefix!r}")
        host = get("SUPPORTBOT_HOST", defaults.host)
        backend = get("SUPPORTBOT_EMBEDDING_BACKEND", defaults.embedding_backend)
        if backend not in EMBEDDING_BACKENDS:
            raise ValueError(
                f"SUPPORTBOT_EMBEDDING_BACKEND must be one of {', '.join(EMBEDDING_BACKENDS)}, got {backend!r}"
            )
        return cls(
            cache_dir=Path(get("SUPPORTBOT_CACHE_DIR", defaults.cache_dir)),
            embedding_model=get("SUPPORTBOT_EMBEDDING_MODEL", defaults.embedding_model),
            embedding_backend=backend,
            articles_dir=Path(get("SUPPORTBOT_ARTICLES_DIR", defaults.articles_dir)),
            business_hours_file=Path(get("SUPPORTBOT_BUSINESS_HOURS", defaults.business_hours_file)),
            thresholds_file=Path(get("SUPPORTBOT_THRESHOLDS", defaults.thresholds_file)),
            redis_url=get("REDIS_URL", defaults.redis_url),
            redis_prefix=prefix,
            rasa_port=rasa_port,
            action_server_port=int(get("ACTION_SERVER_PORT", defaults.action_server_port)),
            agent_service_port=int(get("AGENT_SERVICE_PORT", defaults.agent_service_port)),
            host=host,
            rasa_url=get("RASA_URL", f"http://{host}:{rasa_port}"),
            public_rasa_url=env.get("PUBLIC_RASA_URL", ""),
            rasa_token=env.get("RASA_TOKEN", ""),
            agent_session_hours=float(get("AGENT_SESSION_HOURS", defaults.agent_session_hours)),
            webchat_session_secret=env.get("WEBCHAT_SESSION_SECRET", ""),
            rate_limit=get("SUPPORTBOT_RATE_LIMIT", defaults.rate_limit),
            threads_per_message=int(get("SUPPORTBOT_THREADS_PER_MESSAGE", defaults.threads_per_message)),
            rasa_workers=rasa_workers,
        )
