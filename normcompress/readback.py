"""Values on the device read on the host without stalling the stream.

Progress is reported a few times a second. Reading a device tensor there (`.tolist()`) would make the
host wait until the GPU has run every step queued so far, then queue the next steps from empty: one
bubble per report. A Readback copies the values into pinned host memory behind the queued work and
records an event; the host reads them at a later report, once the event says the copy has landed, and
waits only where it must (the epoch's end). On the CPU the values are there at once.
"""

from collections import deque
from collections.abc import Iterator
from typing import Any

import torch


class Readback:
    """Requests read back in the order they were made, each with the context it was made in."""

    def __init__(self, device: torch.device) -> None:
        self._on_cuda = device.type == "cuda"
        self._pending: deque[tuple[torch.Tensor, Any, Any]] = deque()  # (host values, copy's event, context)

    def request(self, values: torch.Tensor, context: Any) -> None:
        """Start copying `values` to the host; `context` comes back with them."""
        self._pending.append((*self._copy(values), context))

    def _copy(self, values: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """The values' host copy and the event that says it has landed (None: it is there)."""
        if not self._on_cuda:
            return values, None
        host = values.to("cpu", non_blocking=True)  # into pinned memory: the copy does not wait for the host
        landed = torch.cuda.Event()
        landed.record()
        return host, landed

    def arrived(self, wait: bool = False) -> Iterator[tuple[list[float], Any]]:
        """The requests whose values have landed, oldest first; with `wait`, every request made."""
        while self._pending:
            host, landed, context = self._pending[0]
            if landed is not None and not landed.query():
                if not wait:
                    return
                landed.synchronize()
            self._pending.popleft()
            yield host.tolist(), context
