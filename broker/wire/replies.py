"""What an API handler returns instead of a response, and when."""
from __future__ import annotations

from typing import Any

from broker.net import RequestFailed

NO_RESPONSE = object()      # acks=0, or a broker that never answers (isolated): the client times out
CLOSE = object()            # the broker died while the request was in flight: the connection resets


def failed(response: RequestFailed) -> Any:
    """A request the simulation could not deliver: a dead broker resets, a cut-off one stays silent."""
    return CLOSE if response.reason == "refused" else NO_RESPONSE
