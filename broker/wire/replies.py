"""What an API handler returns instead of a response, and when."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from broker.net import RequestFailed

NO_RESPONSE = object()      # acks=0, or a broker that never answers (isolated): the client times out
CLOSE = object()            # the broker died while the request was in flight: the connection resets


def failed(response: RequestFailed) -> Any:
    """A request the simulation could not deliver: a dead broker resets, a cut-off one stays silent."""
    return CLOSE if response.reason == "refused" else NO_RESPONSE


def answer_pending(conn: Any, entries: list[dict], calls: Sequence[tuple[Any, str | None]], timeout_ms: float,
                   fill: Callable[[dict, Any], None]) -> Any | None:
    """A request that spans several internal ones: the calls go out together, one per entry that has no
    error_code yet, in order; fill(entry, response) completes each. A call the simulation could not
    deliver answers the whole request (failed()); None when every entry is filled."""
    answers = iter(conn.gather(calls, timeout_ms))
    for entry in entries:
        if "error_code" in entry:
            continue
        r = next(answers)
        if isinstance(r, RequestFailed):
            return failed(r)
        fill(entry, r)
    return None
