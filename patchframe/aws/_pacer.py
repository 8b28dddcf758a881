"""One adaptive request pacer per account and region, shared by every worker.

Systems Manager throttles per account and region. If each worker backed off on
its own, a throttling storm would leave some nodes failing while others still
hammer the service. Instead every request to one account and region waits for
a slot from one :class:`AdaptiveRateLimiter`, attached to the shared client
through botocore's public events: ``request-created``, which fires for every
attempt (retries included) before anything is sent, waits for a slot;
``needs-retry`` sees each throttled answer.

The pacer sends at full speed until the service throttles. While it throttles,
the service is saturated, so the rate at which it still accepts requests is its
limit: the pacer measures that, then sends evenly spaced at a margin under it,
probing upward after each calm second and measuring again at the next storm.
It settles just under the service's limit, where throttles are rare.
"""

from __future__ import annotations

import threading
import time
from typing import Any

__all__ = ["THROTTLING_CODES", "AdaptiveRateLimiter"]

#: Error codes AWS uses for "slow down".
THROTTLING_CODES = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
)


class AdaptiveRateLimiter:
    """Paces requests to the rate the service accepts.

    While the service throttles, it is saturated: the answers it accepts in that
    time arrive at its own limit. The pacer measures that rate over ``window``
    seconds of throttling, then sends at ``margin`` of it, evenly spaced; after a
    second without a throttle it probes ``probe`` faster each second.

    Parameters
    ----------
    margin
        Share of the measured limit to send at.
    probe
        Relative increase of the rate per second without a throttle.
    window
        Seconds of throttling to measure the limit over.
    min_rate
        Lowest rate, requests per second.

    Examples
    --------
    >>> limiter = AdaptiveRateLimiter(window=0.0)
    >>> limiter.acquire()  # unlimited until the service first throttles
    >>> limiter.on_throttle(); limiter.on_accepted(); limiter.on_throttle()
    >>> limiter.throttles, limiter.rate is not None
    (2, True)
    """

    def __init__(
        self,
        *,
        margin: float = 0.97,
        probe: float = 0.05,
        window: float = 0.5,
        min_rate: float = 0.5,
    ) -> None:
        self._margin = margin
        self._probe = probe
        self._window = window
        self._min_rate = min_rate
        self._lock = threading.Lock()
        self._rate: float | None = None  # None: no limit measured yet
        self._next_slot = 0.0
        self._last_throttle = self._last_probe = 0.0
        self._storm_start: float | None = None
        self._storm_accepted = 0
        self.throttles = 0

    @property
    def rate(self) -> float | None:
        """Current rate in requests per second; None before a limit was measured."""
        return self._rate

    def acquire(self) -> None:
        """Wait for the next free slot."""
        with self._lock:
            if self._rate is None:
                return
            now = time.monotonic()
            calm = now - self._last_throttle >= 1.0
            if calm and now - self._last_probe >= 1.0:
                self._rate *= 1.0 + self._probe
                self._last_probe = now
            slot = max(now, self._next_slot)
            self._next_slot = slot + 1.0 / self._rate
        if slot > now:
            time.sleep(slot - now)

    def on_accepted(self) -> None:
        """Count an answer that was not a throttle."""
        with self._lock:
            if self._storm_start is not None:
                self._storm_accepted += 1

    def on_throttle(self) -> None:
        """Note a throttle; after ``window`` seconds of them, pace to the measured limit."""
        with self._lock:
            now = time.monotonic()
            self.throttles += 1
            self._last_throttle = now
            start = self._storm_start
            # A throttle long after the last storm starts a new measurement.
            if start is None or now - start > 3 * max(self._window, 1.0):
                self._storm_start, self._storm_accepted = now, 0
                return
            elapsed = now - start
            if elapsed < self._window:
                return
            limit = self._storm_accepted / elapsed if elapsed > 0 else self._min_rate
            self._rate = max(self._min_rate, self._margin * limit)
            self._next_slot = now
            self._last_probe = now
            self._storm_start = None

    def attach(self, client: Any) -> None:
        """Make every request of a boto3 client wait for this limiter."""
        events = client.meta.events
        # Not before-send: a more specific before-send handler (the lean sender)
        # would run, and send, before a general one.
        events.register("request-created", self._wait, unique_id=f"pf-pace-{id(self)}")
        events.register("needs-retry", self._needs_retry, unique_id=f"pf-throttle-{id(self)}")

    def _wait(self, **_: Any) -> None:
        self.acquire()

    def _needs_retry(self, response: Any = None, **_: Any) -> None:
        if response is None:
            return
        if response[1].get("Error", {}).get("Code") in THROTTLING_CODES:
            self.on_throttle()
        else:
            self.on_accepted()
