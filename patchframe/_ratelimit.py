"""One adaptive request pacer per account and region, shared by every worker.

Systems Manager throttles per account and region. If each worker backed off on
its own, a throttling storm would leave some nodes failing while others still
hammer the service. Instead every request to one account and region waits for
a slot from one :class:`AdaptiveRateLimiter`, attached to the shared client
through botocore's public events: ``before-send`` waits for a slot (retries
included), ``needs-retry`` sees each throttled answer.

The pacer sends at full speed until the first throttle, then at the rate the
service was seen to accept, times a margin; it probes upward a little each
second without a throttle and steps down on the next one. It settles just
under the service's limit: throttled requests are rare and cheap.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

__all__ = ["THROTTLING_CODES", "AdaptiveRateLimiter"]

#: Error codes AWS uses for "slow down".
THROTTLING_CODES = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
)


class AdaptiveRateLimiter:
    """Paces requests to the rate the service accepts.

    Parameters
    ----------
    backoff
        Share of the measured rate to drop to on a throttle.
    probe
        Relative increase of the rate per second without a throttle.
    min_rate
        Lowest rate, requests per second.

    Examples
    --------
    >>> limiter = AdaptiveRateLimiter()
    >>> limiter.acquire()  # unlimited until the service first throttles
    >>> limiter.on_throttle()
    >>> limiter.throttles, limiter.rate is not None
    (1, True)
    """

    def __init__(self, *, backoff: float = 0.9, probe: float = 0.04, min_rate: float = 0.5):
        self._backoff = backoff
        self._probe = probe
        self._min_rate = min_rate
        self._lock = threading.Lock()
        self._rate: float | None = None  # None: no throttle seen yet
        self._next_slot = 0.0
        self._last_change = 0.0
        self._started: float | None = None
        self._accepted: deque[float] = deque()  # answer times of the last second
        self.throttles = 0

    @property
    def rate(self) -> float | None:
        """Current rate in requests per second; None before the first throttle."""
        return self._rate

    def acquire(self) -> None:
        """Wait for the next free slot."""
        with self._lock:
            now = time.monotonic()
            if self._started is None:
                self._started = now
            if self._rate is None:
                return
            if now - self._last_change >= 1.0:
                self._rate *= 1.0 + self._probe
                self._last_change = now
            slot = max(now, self._next_slot)
            self._next_slot = slot + 1.0 / self._rate
        if slot > now:
            time.sleep(slot - now)

    def on_throttle(self) -> None:
        """Step down to a share of the rate the service just accepted."""
        with self._lock:
            now = time.monotonic()
            self.throttles += 1
            if now - self._last_change < 0.5 and self._rate is not None:
                return  # one storm, one step: answers to the same burst arrive together
            while self._accepted and self._accepted[0] < now - 1.0:
                self._accepted.popleft()
            # The rate accepted over the last second, or since the start if sooner.
            window = min(1.0, max(now - (self._started or now), 0.05))
            seen = max(len(self._accepted), 1) / window
            current = self._rate if self._rate is not None else seen
            self._rate = max(self._min_rate, min(current, seen) * self._backoff)
            self._last_change = now

    def attach(self, client: Any) -> None:
        """Make every request of a boto3 client wait for this limiter."""
        events = client.meta.events
        events.register("before-send", self._before_send, unique_id=f"pf-pace-{id(self)}")
        events.register("needs-retry", self._needs_retry, unique_id=f"pf-throttle-{id(self)}")

    def _before_send(self, **_: Any) -> None:
        self.acquire()

    def on_accepted(self) -> None:
        """Count an answer that was not a throttle."""
        with self._lock:
            self._accepted.append(time.monotonic())
            if len(self._accepted) > 10_000:
                self._accepted.popleft()

    def _needs_retry(self, response: Any = None, **_: Any) -> None:
        if response is None:
            return
        if response[1].get("Error", {}).get("Code") in THROTTLING_CODES:
            self.on_throttle()
        else:
            self.on_accepted()
