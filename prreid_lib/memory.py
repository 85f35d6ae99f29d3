"""Peak memory of the processes a step starts (a chapter's kernel), sampled while it runs."""

from __future__ import annotations

import threading
from types import TracebackType

import psutil

GIB = 2**30


def resident_bytes(processes: list[psutil.Process]) -> int:
    """Memory the processes hold together. One process: its resident set. Several: the sum
    of their proportional set sizes, so pages a forked child shares with its parent (a
    16 GiB kernel that starts a subprocess) are counted once, not once per process."""
    total = 0
    for proc in processes:
        try:
            total += proc.memory_info().rss if len(processes) == 1 else _pss(proc)
        except psutil.Error:  # the process ended between listing and reading
            continue
    return total


def _pss(proc: psutil.Process) -> int:
    info = proc.memory_full_info()
    return int(getattr(info, "pss", info.rss))  # pss: Linux only


class PeakChildMemory:
    """Context manager: the peak summed resident memory (GiB) of this process's children.

    A thread samples every ``interval`` seconds the resident set size of every
    descendant process (papermill's kernel, its workers) and keeps the largest
    sum in ``peak_gib`` (:func:`resident_bytes`). Peaks shorter than ``interval`` can be missed.
    """

    def __init__(self, interval: float = 0.5) -> None:
        self.interval, self.peak_gib = interval, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(self.interval):
            self.peak_gib = max(self.peak_gib, resident_bytes(me.children(recursive=True)) / GIB)

    def __enter__(self) -> PeakChildMemory:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
