"""One adaptive request pacer per account and region, shared by every worker.

Systems Manager throttles per account and region. If each worker backed off on
its own, a throttling storm would leave some nodes failing while others still
hammer the service. Instead every request to one account and region waits for
a slot from one :class:`AdaptiveRateLimiter`, attached to the shared client
through botocore's public events: ``before-send``, which fires once for every
attempt (retries included) right before it is sent, waits for a slot;
``needs-retry`` sees each answer. For a throttle, the pacer answers
``needs-retry`` before botocore's retry handler does, so the request goes again
as soon as the pacer has a slot for it, not after botocore's backoff (a random
wait of up to one second, then two, four...), which would leave the service
idle while the pacer had slots to spare. The retry still counts against the
client's maximum attempts; botocore's retry quota, which stops retry storms, no
longer stops throttled retries: the pace does.

The pacer sends at full speed until the service throttles. While it throttles,
the service is busy, so the rate at which it still accepts requests is about its
limit: the pacer measures that, then sends evenly spaced at a margin under it,
probes upward while no throttle comes, and measures again at the next storm.
Until the first measurement, a throttled request backs off as botocore would,
but counted in its own round trips rather than in seconds (a random share of
one, then of two, four...), so the requests of the first burst come back spread
out and keep the service evenly busy while it is measured.

A measurement is exact only if the pacer's own pace drew the storm: requests went
out at that pace throughout. The first storm, or one that a pause of the workers
broke, only bounds the limit from below; the pacer then sends a step above the
bound, so that the next storm, drawn by its even pace, measures the limit
exactly, and until then it probes upward sooner and by larger steps. It probes
only a pace that held a request back: a rate faster than the workers ask for
tells nothing. Probing is cheap: a throttled request spent no token, and while
the pace is above the limit the service stays busy; it finds a limit that came
back up within a few seconds.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from botocore.retries.standard import DEFAULT_MAX_ATTEMPTS

__all__ = ["THROTTLING_CODES", "AdaptiveRateLimiter"]

#: Error codes AWS uses for "slow down".
THROTTLING_CODES = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
)


class AdaptiveRateLimiter:
    """Paces requests to the rate the service accepts.

    The pacer measures the rate of accepted answers over ``window`` seconds of
    throttling. If it sent at its own pace throughout, it then sends at
    ``margin`` of that rate, evenly spaced; otherwise the rate is only a lower
    bound, and it sends ``4 * probe`` above it. After ``calm`` seconds without a
    throttle it sends ``probe`` faster, after the next calm spell twice that step
    faster again, and so on (a step at most doubles the rate), until the service
    throttles and a new measurement starts. From a lower bound, half of ``calm``
    suffices and the first step is ``4 * probe``. Only a pace that held a request
    back is probed. A lone throttle, long after any other, slows the pace to
    ``margin`` of itself.

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
    clock, sleep, uniform
        Seconds from a monotonic clock, how to wait, and a random number from 0
        to 1; injectable for tests.

    Examples
    --------
    >>> now = [0.0]
    >>> limiter = AdaptiveRateLimiter(clock=lambda: now[0])
    >>> limiter.acquire()  # unlimited until the service first throttles
    >>> for _ in range(8):  # half a second of a busy service: throttles, 16 accepted/s
    ...     limiter.on_throttle(); now[0] += 1 / 16; limiter.on_accepted()
    >>> limiter.on_throttle()  # not paced, 16 a second is a lower bound: 20% above it
    >>> limiter.throttles, round(limiter.rate, 2)
    (9, 19.2)
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
        uniform: Callable[[], float] = random.random,
    ) -> None:
        self._margin = margin
        self._probe = probe
        self._window = window
        self._calm = calm
        self._min_rate = min_rate
        self._clock = clock
        self._sleep = sleep
        self._uniform = uniform
        self._sent = threading.local()  # when the request of this thread left
        self._lock = threading.Lock()
        self._rate: float | None = None  # None: no limit measured yet
        self._exact = False  # whether the rate was measured under an even pace
        self._held = False  # whether the pace held a request back since the last probe
        self._next_slot = 0.0
        self._last_throttle = self._last_probe = clock()
        self._step = probe
        self._storm_start: float | None = None
        self._storm_accepted = self._storm_sent = 0
        self.throttles = 0

    @property
    def rate(self) -> float | None:
        """Current rate in requests per second; None before a limit was measured."""
        return self._rate

    def acquire(self) -> None:
        """Wait for the next free slot.

        A waiting request looks again when the slot it waits for is due, so a pace
        changed meanwhile applies to it at once; waiting requests are served in no
        particular order.
        """
        while True:
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
                interval = 1.0 / self._rate
                wait = self._next_slot - now
                if wait <= 0:
                    # Woken a little late, keep the even spacing; after a pause, restart it.
                    late = -wait >= interval
                    self._next_slot = (now if late else self._next_slot) + interval
                    self._storm_sent += 1
                    return
                self._held = True
            self._sleep(wait)

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
                self._storm_start, self._storm_accepted, self._storm_sent = now, 0, 0
                if self._rate is not None and quiet > self._window:
                    self._rate = max(self._min_rate, self._margin * self._rate)
                return
            elapsed = now - start
            if elapsed < self._window:
                return
            # Exact only if the pace drew the storm: requests went out at it throughout.
            # A storm the pacer did not pace, or that a pause of the workers (or of
            # the process) broke, only bounds the limit from below.
            self._exact = (
                self._rate is not None and self._storm_sent >= self._margin * self._rate * elapsed
            )
            self._step = self._first_step()
            limit = self._storm_accepted / elapsed
            # A lower bound is paced a first step above itself: the storm that pace
            # draws measures the limit exactly, and costs nothing but throttles.
            share = self._margin if self._exact else 1.0 + self._step
            self._rate = max(self._min_rate, share * limit)
            self._next_slot = now
            self._last_probe = now
            self._storm_start = None

    def _first_step(self) -> float:
        # Up from a lower bound, the limit is likely far: start with a bigger step.
        return self._probe if self._exact else 4 * self._probe

    def attach(self, client: Any) -> None:
        """Make every request of a boto3 client wait for this limiter."""
        (send, pace_id), (retry, throttle_id) = self._hooks(client)
        events = client.meta.events
        budget = (client.meta.config.retries or {}).get("total_max_attempts")
        # before-send fires once per attempt, retries included, after signing and
        # right before the request leaves, so the pacer spaces requests as the
        # service sees them. request-created, used while a hand-written sender sat
        # on before-send, fires earlier, when botocore builds the request. A
        # handler that answers on before-send in-process (as tests do) is paced
        # too: botocore calls every before-send handler.
        events.register(send, self._wait, unique_id=pace_id)
        # Called before botocore's retry handler, whose answer botocore would
        # otherwise take: a throttled request waits for the pacer, not for a
        # backoff of up to seconds. It still counts against the client's attempts
        # (botocore's default for standard mode if the client sets none; legacy
        # mode allows more).
        events.register_first(
            retry,
            partial(self._needs_retry, budget=budget or DEFAULT_MAX_ATTEMPTS),
            unique_id=throttle_id,
        )

    def detach(self, client: Any) -> None:
        """Stop pacing a client's requests: what :meth:`attach` registered goes.

        A load detaches its pacer from a client it was given, so that the next
        load on that client, and the user's own calls, are not paced by it too.
        """
        for event, unique_id in self._hooks(client):
            client.meta.events.unregister(event, unique_id=unique_id)

    def _hooks(self, client: Any) -> tuple[tuple[str, str], tuple[str, str]]:
        """The event and unique id of each handler :meth:`attach` registers."""
        service = client.meta.service_model.service_id.hyphenize()
        return ("before-send", f"pf-pace-{id(self)}"), (
            f"needs-retry.{service}",
            f"pf-throttle-{id(self)}",
        )

    def _wait(self, **_: Any) -> None:
        self.acquire()
        self._sent.at = self._clock()

    def _needs_retry(
        self, *, budget: int, response: Any = None, attempts: int = 1, **_: Any
    ) -> float | None:
        if response is None:
            return None
        if response[1].get("Error", {}).get("Code") not in THROTTLING_CODES:
            self.on_accepted()
            return None
        self.on_throttle()
        if attempts >= budget:
            return None  # botocore's own handler gives up
        with self._lock:
            if self._rate is not None:
                return 0.0  # the next attempt waits for a slot like any other
        # Not paced yet: botocore's backoff, but in round trips rather than seconds,
        # spreads out a burst without leaving the service idle.
        now = self._clock()
        sent: float = getattr(self._sent, "at", now)
        return self._uniform() * (now - sent) * 2.0 ** (attempts - 1)
