"""The ending the measurement commands share: run, keep the figures as JSON, print them."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

Results = dict[str, Any]


def finish(
    name: str,
    measure: Callable[[], Results],
    text: Callable[[Results], str],
    json_file: Path | None,
    sound: Callable[[Results], bool] = lambda _: True,
) -> int:
    """The exit code: 1 when `measure` raised RuntimeError (told on stderr, prefixed with
    `name`) or its results are not `sound`. Writes them to `json_file`, if any, and prints
    `text(results)`."""
    try:
        results = measure()
    except RuntimeError as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 1
    if json_file:
        json_file.write_text(json.dumps(results, indent=2) + "\n")
    print(text(results))
    return 0 if sound(results) else 1
