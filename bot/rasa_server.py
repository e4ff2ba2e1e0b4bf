"""Starts the Rasa server (`python -m bot.rasa_server run ...`, same arguments as `rasa run`).

Three things differ from `python -m rasa run`:

- JSON Schema validators are compiled once per schema. Rasa calls `jsonschema.validate`
  on every action server response and on every `POST .../tracker/events`; that function
  checks the schema itself against the meta-schema and compiles it again each time, which
  cost 16.7 ms of a knowledge-base turn's ~37 ms of CPU (py-spy under `bench load`).
  A compiled validator gives the same errors in 0.7 ms.
- Event classes are looked up by type name in a dictionary. Rasa walks every subclass of
  `Event` for each event it reads back from the tracker store (8.5% of the server's time).
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


def _event_classes() -> dict[str, type]:
    """Event type name -> class, the first in Rasa's own search order winning, as in resolve_by_type."""
    from rasa.shared.core.events import Event
    from rasa.shared.utils.common import all_subclasses

    found: dict[str, type] = {}
    for cls in all_subclasses(Event):
        found.setdefault(cls.type_name, cls)
    return found


_original_resolve_by_type: Any = None
_classes: dict[str, type] = {}


def resolve_by_type(type_name: str, default: Any = None) -> Any:
    """`Event.resolve_by_type` without walking the class tree for every event of every tracker read."""
    cls = _classes.get(type_name)
    if cls is None:
        _classes.update(_event_classes())  # event classes imported since (plugins) join on a miss
        cls = _classes.get(type_name)
    return cls if cls is not None else _original_resolve_by_type(type_name, default)


def install() -> None:
    """Rasa imports `validate` from jsonschema inside its functions, so this reaches every call."""
    global _original_resolve_by_type
    from rasa.shared.core.events import Event

    jsonschema.validate = validate
    if _original_resolve_by_type is None:
        _original_resolve_by_type = Event.resolve_by_type
        Event.resolve_by_type = staticmethod(resolve_by_type)


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
