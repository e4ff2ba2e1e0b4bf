"""Starts the Rasa server (`python -m bot.rasa_server run ...`, same arguments as `rasa run`).

Two things differ from `python -m rasa run`:

- JSON Schema validators are compiled once per schema. Rasa calls `jsonschema.validate`
  on every action server response and on every `POST .../tracker/events`; that function
  checks the schema itself against the meta-schema and compiles it again each time, which
  cost 16.7 ms of a knowledge-base turn's ~37 ms of CPU (py-spy under `bench load`).
  A compiled validator gives the same errors in 0.7 ms.
- The API token comes from the RASA_TOKEN environment variable, so it does not show in
  the process list (`ps`), as `--auth-token` on the command line would.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

_original_validate = jsonschema.validate


@functools.lru_cache(maxsize=64)
def _compiled(schema_json: str) -> Validator:
    schema = json.loads(schema_json)
    cls = validator_for(schema)
    cls.check_schema(schema)  # once, as jsonschema.validate would on every call
    return cls(schema)


def validate(instance: Any, schema: Any, cls: Any = None, *args: Any, **kwargs: Any) -> None:
    """`jsonschema.validate` with the compiled validator kept: same result, same error."""
    if cls is not None or args or kwargs:
        return _original_validate(instance, schema, cls, *args, **kwargs)
    try:
        key = json.dumps(schema, sort_keys=True)
    except (TypeError, ValueError):  # not plain JSON: nothing to key the cache on
        return _original_validate(instance, schema)
    error = best_match(_compiled(key).iter_errors(instance))
    if error is not None:
        raise error


def install() -> None:
    """Rasa imports `validate` from jsonschema inside its functions, so this reaches every call."""
    jsonschema.validate = validate


def main() -> None:
    install()
    if "--enable-api" in sys.argv and "--auth-token" not in sys.argv:
        token = os.environ.get("RASA_TOKEN")
        if not token:
            raise SystemExit("error: RASA_TOKEN is not set; the Rasa HTTP API (--enable-api) needs a token")
        sys.argv += ["--auth-token", token]
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()
