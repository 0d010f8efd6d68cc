"""The chart's PCA reference, asked of a child process one probe at a time.

Each probe is a child that loads torch (the app never does) and fits or reads a run's PCA baseline.
Overlaying many runs, or walking a store of damaged ones, once started a child per run: here a run asked
for while a probe is out waits, only the latest is kept, and a run whose probe found none is not asked
again.
"""

from collections.abc import Callable

from normcompress import probe
from normcompress.errors import NormcompressError
from normcompress.runs import RunStore


class ReferenceLoader:
    def __init__(
        self,
        store: RunStore,
        in_thread: Callable[[Callable[[], None]], object],
        to_ui: Callable[..., object],
        show: Callable[[object], None],
        shown: Callable[[], bool],
    ) -> None:
        """`in_thread(f)` runs f off the UI thread; `to_ui(f, *args)` calls back on it; `show(baseline)`
        draws the line; `shown()` says whether the chart has one already."""
        self.store, self.in_thread, self.to_ui, self.show, self.shown = store, in_thread, to_ui, show, shown
        self.busy = False
        self.waiting: str | None = None
        self.without: set[str] = set()  # runs whose probe found no baseline

    def want(self, run_id: str) -> None:
        if run_id in self.without:
            return
        if self.busy:
            self.waiting = run_id
            return
        self.busy = True
        self.in_thread(lambda: self._probe(run_id))

    def _probe(self, run_id: str) -> None:
        baseline = None
        try:
            baseline = probe.run_baseline(self.store, run_id)
        except NormcompressError:
            pass  # the chart simply has no reference line; the run's own problems are shown elsewhere
        finally:
            self.to_ui(self._done, run_id, baseline)

    def _done(self, run_id: str, baseline) -> None:
        self.busy = False
        if baseline is None:
            self.without.add(run_id)
        else:
            self.show(baseline)
        waiting, self.waiting = self.waiting, None
        if waiting is not None and not self.shown():
            self.want(waiting)
