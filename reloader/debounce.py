"""Turn bursts of file changes into one restart, without ever dropping the last change.

Pure logic with the clock passed in, so it is tested without sleeping (Django's ``tick()``
seam). A burst ends when no change came for ``quiet`` seconds, or ``max_wait`` seconds after its
first change, whichever comes first; changes that arrive after a batch was taken start the next
burst, so the newest change always gets a restart of its own.
"""

from __future__ import annotations

from collections.abc import Iterable


class Debouncer:
    def __init__(self, quiet: float, max_wait: float) -> None:
        self.quiet = quiet
        self.max_wait = max_wait
        self._paths: dict[str, None] = {}
        self._first = 0.0
        self._last = 0.0

    def add(self, paths: Iterable[str], now: float) -> None:
        new = list(paths)
        if not new:
            return
        if not self._paths:
            self._first = now
        self._last = now
        self._paths.update(dict.fromkeys(new))

    @property
    def pending(self) -> bool:
        return bool(self._paths)

    def deadline(self) -> float | None:
        """When the current burst is due, or None when nothing is pending."""
        if not self._paths:
            return None
        return min(self._last + self.quiet, self._first + self.max_wait)

    def take(self, now: float) -> list[str]:
        """The paths of the burst if it is due (in arrival order), else an empty list."""
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return []
        paths = list(self._paths)
        self._paths.clear()
        return paths

    def take_all(self) -> list[str]:
        """Everything pending, due or not (a forced restart consumes the burst)."""
        paths = list(self._paths)
        self._paths.clear()
        return paths
