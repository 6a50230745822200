"""Logging for the reader: warnings that repeat on every read are rate-limited."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Hashable

log = logging.getLogger("zombi_iceberg")

WARN_INTERVAL_S = 30.0
_last: dict[Hashable, float] = {}
_lock = threading.Lock()


def warn_limited(key: Hashable, msg: str, *args: Any) -> None:
    """A warning once per WARN_INTERVAL_S per key; the repeats go to debug."""
    now = time.monotonic()
    with _lock:
        last = _last.get(key)
        fresh = last is None or now - last >= WARN_INTERVAL_S
        if fresh:
            _last[key] = now
    log.log(logging.WARNING if fresh else logging.DEBUG, msg, *args)
