"""How many threads were inside a stretch of code at once, at most."""

from __future__ import annotations

import threading
import time
from typing import Any


class AtOnce:
    """Counts the threads between :meth:`enter` and :meth:`leave`; ``most`` is the peak.

    Used as a context manager around a stretch of code, or through ``enter`` and
    ``leave`` as two botocore event handlers (a request sent, then answered).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inside = 0
        self.most = 0

    def enter(self, **_: Any) -> None:
        with self._lock:
            self._inside += 1
            self.most = max(self.most, self._inside)

    def leave(self, **_: Any) -> None:
        with self._lock:
            self._inside -= 1

    def __enter__(self) -> AtOnce:
        self.enter()
        return self

    def __exit__(self, *_: object) -> None:
        self.leave()

    def stay(self, seconds: float, **_: Any) -> None:
        """Stay inside ``seconds``: widens the window in which two threads could meet."""
        with self:
            time.sleep(seconds)
