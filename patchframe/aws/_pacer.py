"""One adaptive request pacer per account and region, shared by every worker.

Systems Manager throttles per account and region. If each worker backed off on
its own, a throttling storm would leave some nodes failing while others still
hammer the service. Instead every request to one account and region waits for
a slot from one :class:`AdaptiveRateLimiter`, attached to the shared client
through botocore's public events: ``before-send``, which fires once for every
attempt (retries included) right before it is sent, waits for a slot;
``needs-retry`` sees each answer.

The pacer sends at full speed until the service throttles. While it throttles,
the service is busy, so the rate at which it still accepts requests is about its
limit: the pacer measures that, then sends evenly spaced at a margin under it,
probes upward while no throttle comes, and measures again at the next storm.

A storm the pacer did not pace (the first one) only bounds the limit from below:
the workers botocore was backing off sent nothing, and the service may have
idled. So after such a measurement the pacer probes upward sooner and by larger
steps, until its own pace draws a storm; a storm drawn by an even pace above the
limit is measured exactly, and from then on it probes gently. It probes only a
pace that held a request back: a rate faster than the workers ask for tells
nothing, and would let them burst into a storm when they come back from
botocore's backoff. Probing is cheap (a throttled request spent no token, and
the other workers keep the service busy while botocore backs it off), and it
finds a limit that came back up within a few seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["THROTTLING_CODES", "AdaptiveRateLimiter"]

#: Error codes AWS uses for "slow down".
THROTTLING_CODES = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
)


class AdaptiveRateLimiter:
    """Paces requests to the rate the service accepts.

    The pacer measures the rate of accepted answers over ``window`` seconds of
    throttling, then sends at ``margin`` of it, evenly spaced. After ``calm``
    seconds without a throttle it sends ``probe`` faster, after the next calm
    spell twice that step faster again, and so on (a step at most doubles the
    rate), until the service throttles and a new measurement starts. While the
    measurement is only a lower bound (the first storm was not paced), half of
    ``calm`` suffices and the first step is ``4 * probe``. Only a pace that
    held a request back is probed. A lone throttle, long after any other, slows
    the pace to ``margin`` of itself.

    Parameters
    ----------
    margin
        Share of the measured limit to send at.
    probe
        First relative increase of the rate after a calm spell.
    window
        Seconds of throttling to measure the limit over.
    calm
        Seconds without a throttle before each upward probe.
    min_rate
        Lowest rate, requests per second.
    clock, sleep
        Seconds from a monotonic clock, and how to wait; injectable for tests.

    Examples
    --------
    >>> now = [0.0]
    >>> limiter = AdaptiveRateLimiter(clock=lambda: now[0])
    >>> limiter.acquire()  # unlimited until the service first throttles
    >>> for _ in range(8):  # half a second of a busy service: throttles, 16 accepted/s
    ...     limiter.on_throttle(); now[0] += 1 / 16; limiter.on_accepted()
    >>> limiter.on_throttle()  # the window is over: 97% of 16 a second from now on
    >>> limiter.throttles, round(limiter.rate, 2)
    (9, 15.52)
    """

    def __init__(
        self,
        *,
        margin: float = 0.97,
        probe: float = 0.05,
        window: float = 0.5,
        calm: float = 0.5,
        min_rate: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self._margin = margin
        self._probe = probe
        self._window = window
        self._calm = calm
        self._min_rate = min_rate
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._rate: float | None = None  # None: no limit measured yet
        self._exact = False  # whether the rate was measured under an even pace
        self._held = False  # whether the pace held a request back since the last probe
        self._next_slot = 0.0
        self._last_throttle = self._last_probe = clock()
        self._step = probe
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
            now = self._clock()
            calm = self._calm if self._exact else self._calm / 2
            # Faster than the workers ask tells nothing: probe only a pace that held one back.
            if self._held and min(now - self._last_throttle, now - self._last_probe) >= calm:
                self._rate *= 1.0 + self._step
                self._step = min(2 * self._step, 1.0)
                self._last_probe, self._held = now, False
            slot = max(now, self._next_slot)
            self._next_slot = slot + 1.0 / self._rate
            self._held = self._held or slot > now
        if slot > now:
            self._sleep(slot - now)

    def on_accepted(self) -> None:
        """Count an answer that was not a throttle."""
        with self._lock:
            if self._storm_start is not None:
                self._storm_accepted += 1

    def on_throttle(self) -> None:
        """Note a throttle; after ``window`` seconds of them, pace to the measured limit."""
        with self._lock:
            now = self._clock()
            quiet = now - self._last_throttle
            self.throttles += 1
            self._last_throttle = now
            self._step = self._first_step()
            start = self._storm_start
            # Throttles further apart than the window do not show a busy service in
            # between (the workers may all have been backing off): a new measurement
            # starts, and a pace that drew a lone throttle slows a little.
            if start is None or quiet > self._window:
                self._storm_start, self._storm_accepted = now, 0
                if self._rate is not None and quiet > self._window:
                    self._rate = max(self._min_rate, self._margin * self._rate)
                return
            elapsed = now - start
            if elapsed < self._window:
                return
            self._exact = self._rate is not None
            self._step = self._first_step()
            limit = self._storm_accepted / elapsed
            self._rate = max(self._min_rate, self._margin * limit)
            self._next_slot = now
            self._last_probe = now
            self._storm_start = None

    def _first_step(self) -> float:
        # Up from a lower bound, the limit is likely far: start with a bigger step.
        return self._probe if self._exact else 4 * self._probe

    def attach(self, client: Any) -> None:
        """Make every request of a boto3 client wait for this limiter."""
        events = client.meta.events
        # before-send fires once per attempt, retries included, after signing and
        # right before the request leaves, so the pacer spaces requests as the
        # service sees them. request-created, used while a hand-written sender sat
        # on before-send, fires earlier, when botocore builds the request. A
        # handler that answers on before-send in-process (as tests do) is paced
        # too: botocore calls every before-send handler.
        events.register("before-send", self._wait, unique_id=f"pf-pace-{id(self)}")
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
