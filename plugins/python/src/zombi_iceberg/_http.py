"""HTTP plumbing shared by the catalog and the hot reader.

The node is both the REST catalog and the source of hot rows, so a node that hangs must
never hang a reader: every request to it carries a timeout.
"""

from __future__ import annotations

from typing import Any, Mapping

from requests import PreparedRequest, Response, Session
from requests.adapters import HTTPAdapter

PLANNING_TIMEOUT_MS = "zombi.planning-timeout-ms"
DEFAULT_PLANNING_TIMEOUT_MS = 5000


def planning_timeout_s(properties: Mapping[str, Any]) -> float:
    raw = properties.get(PLANNING_TIMEOUT_MS, DEFAULT_PLANNING_TIMEOUT_MS)
    try:
        ms = float(raw)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{PLANNING_TIMEOUT_MS} must be a number of milliseconds, got {raw!r}") from exc
    if ms <= 0:
        raise ValueError(f"{PLANNING_TIMEOUT_MS} must be positive, got {raw!r}")
    return ms / 1000.0


class TimeoutAdapter(HTTPAdapter):
    """Gives a default timeout to every request sent without one.

    requests has no session-wide timeout and PyIceberg's RestCatalog never passes one, so
    the adapter is the one place that sees every call.
    """

    def __init__(self, timeout_s: float, **kwargs: Any) -> None:
        self._timeout_s = timeout_s
        super().__init__(**kwargs)

    def send(self, request: PreparedRequest, stream: bool = False, timeout: Any = None, **kwargs: Any) -> Response:
        if timeout is None:
            # (connect, read): the read timeout bounds each wait for bytes, which is what a
            # server that accepts and never answers triggers.
            timeout = (self._timeout_s, self._timeout_s)
        return super().send(request, stream=stream, timeout=timeout, **kwargs)


def mount_timeout(session: Session, timeout_s: float, pool_maxsize: int = 10) -> Session:
    adapter = TimeoutAdapter(timeout_s, pool_maxsize=pool_maxsize)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
