"""The adaptive pacer, on an injected clock: no test here waits for time to pass."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest
from mock_ssm import MockSSM, error, page

from patchframe.aws._pacer import AdaptiveRateLimiter

NODE = "i-0123456789abcdef0"


class Clock:
    """A monotonic clock that moves only when told to, or when slept on."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class SharedClock(Clock):
    """A Clock that worker threads sleep on, moved on by the test once they all wait."""

    def __init__(self) -> None:
        super().__init__()
        self._moved = threading.Condition()
        self._wakes: list[float] = []
        self.served: list[float] = []

    def sleep(self, seconds: float) -> None:
        with self._moved:
            wake = self.now + seconds
            self._wakes.append(wake)
            self._moved.notify_all()
            self._moved.wait_for(lambda: self.now >= wake)
            self._wakes.remove(wake)
            self._moved.notify_all()

    def worker(self, limiter: AdaptiveRateLimiter) -> threading.Thread:
        """A thread that asks ``limiter`` for one slot and notes when it got it."""

        def ask() -> None:
            limiter.acquire()
            with self._moved:
                self.served.append(self.now)
                self._moved.notify_all()

        thread = threading.Thread(target=ask, daemon=True)
        thread.start()
        return thread

    def step(self, seconds: float, *, workers: int) -> None:
        """Move time on once each of ``workers`` is served or sleeps."""
        with self._moved:
            assert self._moved.wait_for(
                lambda: sum(w > self.now for w in self._wakes) + len(self.served) == workers,
                timeout=5,
            )
            self.now += seconds
            self._moved.notify_all()


def pacer(clock: Clock, **kwargs: Any) -> AdaptiveRateLimiter:
    return AdaptiveRateLimiter(clock=clock, sleep=clock.sleep, **kwargs)


class Service:
    """A token bucket: ``limit`` requests a second, ``burst`` at most saved up."""

    def __init__(self, clock: Clock, limit: float, burst: int = 2) -> None:
        self.clock, self.limit, self.burst = clock, limit, burst
        self.tokens, self.stamp = float(burst), clock.now

    def answer(self, limiter: AdaptiveRateLimiter) -> bool:
        """Take one request now; tell ``limiter`` whether it was accepted."""
        now = self.clock.now
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.limit)
        self.stamp = now
        if self.tokens < 1:
            limiter.on_throttle()
            return False
        self.tokens -= 1
        limiter.on_accepted()
        return True


def storm(limiter: AdaptiveRateLimiter, clock: Clock, *, limit: float) -> None:
    """A busy service, not paced, until the pacer measures: throttles, answers at ``limit``."""
    limiter.on_throttle()
    rate = limiter.rate
    for _ in range(int(limit) + 1):  # a second at most
        clock.now += 1 / limit
        limiter.on_accepted()
        limiter.on_throttle()
        if limiter.rate != rate:
            return


def paced_storm(limiter: AdaptiveRateLimiter, clock: Clock, *, limit: float) -> None:
    """Workers asking without pause, at a pace above ``limit``, until the pacer measures."""
    service = Service(clock, limit)
    rate = limiter.rate
    end = clock.now + 2
    while limiter.rate == rate and clock.now < end:
        limiter.acquire()
        service.answer(limiter)


def busy(limiter: AdaptiveRateLimiter, clock: Clock, seconds: float) -> None:
    """Workers asking for slots without pause, and no throttle, for ``seconds``."""
    end = clock.now + seconds
    while clock.now < end:
        limiter.acquire()


def test_unlimited_before_the_first_throttle() -> None:
    clock = Clock()
    limiter = pacer(clock)
    for _ in range(1000):
        limiter.acquire()
    assert clock.sleeps == [] and limiter.rate is None
    limiter.on_throttle()  # one throttle starts a measurement, it sets no limit yet
    limiter.acquire()
    assert clock.sleeps == [] and limiter.rate is None


def test_a_storm_it_did_not_pace_bounds_the_limit_from_below() -> None:
    clock = Clock()
    limiter = pacer(clock, margin=0.9, probe=0.05)
    storm(limiter, clock, limit=40)
    assert limiter.rate == pytest.approx(1.2 * 40)  # a first step above the bound


def test_a_storm_its_pace_drew_measures_the_limit() -> None:
    clock = Clock()
    limiter = pacer(clock, margin=0.9)
    storm(limiter, clock, limit=40)
    paced_storm(limiter, clock, limit=40)
    assert limiter.rate == pytest.approx(0.9 * 40, rel=0.05)


def test_a_storm_that_a_pause_broke_only_bounds_the_limit() -> None:
    clock = Clock()
    limiter = pacer(clock, margin=0.9, probe=0.05)
    storm(limiter, clock, limit=40)
    service, throttles = Service(clock, 40), limiter.throttles
    while limiter.throttles < throttles + 4:  # a storm drawn by the pace starts...
        limiter.acquire()
        service.answer(limiter)
    clock.now += 0.4  # ...and the workers stop (a pause of the process, say)
    limiter.on_throttle()
    bound = limiter.rate
    assert bound is not None
    busy(limiter, clock, 0.26)  # so the pacer probes after half a calm spell, by 20%
    assert limiter.rate == pytest.approx(bound * 1.2)


def test_sends_evenly_spaced_at_its_pace() -> None:
    clock = Clock()
    limiter = pacer(clock)
    storm(limiter, clock, limit=40)
    sent = []
    for _ in range(8):  # eight workers asking at the same instant
        limiter.acquire()
        sent.append(clock.now)
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert limiter.rate is not None
    assert gaps == pytest.approx([1 / limiter.rate] * 7)


def test_a_waiting_request_takes_up_a_faster_pace_at_once() -> None:
    clock = SharedClock()
    limiter = pacer(clock, min_rate=0.5)
    for _ in range(7):  # 0.6 s of throttles, nothing accepted: the lowest pace
        limiter.on_throttle()
        clock.now += 0.1
    assert limiter.rate == 0.5
    limiter.acquire()  # the next slot is two seconds away
    start = clock.now
    workers = [clock.worker(limiter) for _ in range(3)]
    clock.step(0.0, workers=3)  # all three wait for it
    storm(limiter, clock, limit=20)  # meanwhile the pace goes up to 24 a second or more
    while len(clock.served) < 3 and clock.now < start + 2.2:
        clock.step(0.002, workers=3)
    # Each one took up the new pace once the slot it waited for was due, rather
    # than wait for the slots of the old pace, two seconds apart.
    assert len(clock.served) == 3, clock.served
    assert limiter.rate is not None and limiter.rate >= 24
    gaps = [b - a for a, b in itertools.pairwise(clock.served)]
    assert gaps == pytest.approx([1 / limiter.rate] * 2, abs=0.003)
    for worker in workers:
        worker.join(timeout=5)


def test_from_a_lower_bound_it_probes_up_fast_by_a_doubling_step() -> None:
    clock = Clock()
    limiter = pacer(clock, probe=0.05, calm=1.0)
    storm(limiter, clock, limit=20)  # the first storm, not paced: a lower bound
    measured = limiter.rate
    assert measured is not None
    busy(limiter, clock, 0.4)
    assert limiter.rate == measured  # not calm for half a second yet
    rates = []
    for _ in range(3):
        busy(limiter, clock, 0.5)
        rates.append(limiter.rate)
    assert rates == pytest.approx(
        [measured * 1.2, measured * 1.2 * 1.4, measured * 1.2 * 1.4 * 1.8]
    )


def test_after_a_paced_storm_it_probes_each_calm_second_from_a_small_step() -> None:
    clock = Clock()
    limiter = pacer(clock, probe=0.05, calm=1.0)
    storm(limiter, clock, limit=20)
    paced_storm(limiter, clock, limit=20)  # drawn by its own pace: the limit itself
    measured = limiter.rate
    assert measured is not None and measured == pytest.approx(0.97 * 20, rel=0.05)
    busy(limiter, clock, 0.9)
    assert limiter.rate == measured
    rates = []
    for _ in range(3):
        busy(limiter, clock, 1.0)
        rates.append(limiter.rate)
    assert rates == pytest.approx([measured * 1.05, measured * 1.05 * 1.1, measured * 1.155 * 1.2])
    limiter.on_throttle()  # a lone throttle: a little slower, and the next probe small again
    slowed = limiter.rate
    assert slowed is not None and slowed == pytest.approx(0.97 * rates[-1])
    busy(limiter, clock, 1.1)
    assert limiter.rate == pytest.approx(slowed * 1.05)


def test_a_pace_that_holds_nothing_back_is_not_probed() -> None:
    clock = Clock()
    limiter = pacer(clock)
    storm(limiter, clock, limit=20)
    measured = limiter.rate
    for _ in range(10):  # one request a second: far under the pace
        clock.now += 1.0
        limiter.acquire()
    assert limiter.rate == measured and clock.sleeps == []


def test_a_lone_throttle_slows_the_pace_a_little() -> None:
    clock = Clock()
    limiter = pacer(clock, margin=0.9)
    storm(limiter, clock, limit=20)
    measured = limiter.rate
    assert measured is not None
    clock.now += 0.6  # longer than the window: nothing shows the service is busy
    limiter.on_throttle()
    assert limiter.rate == pytest.approx(0.9 * measured)


def simulate(limits: list[float], *, burst: int = 4) -> tuple[list[int], list[int]]:
    """Accepted and throttled requests per second of one greedy sender, paced.

    The service's limit is ``limits[s]`` in second ``s``; the client needs 5 ms
    of its own per request.
    """
    clock = Clock()
    start = clock.now
    limiter = pacer(clock)
    service = Service(clock, limits[0], burst)
    accepted, throttled = [0] * len(limits), [0] * len(limits)
    while True:
        limiter.acquire()
        clock.now += 0.005
        second = int(clock.now - start)
        if second >= len(limits):
            return accepted, throttled
        service.limit = limits[second]
        counts = accepted if service.answer(limiter) else throttled
        counts[second] += 1


def test_settles_just_under_a_steady_limit() -> None:
    accepted, throttled = simulate([40.0] * 20)
    assert all(36 <= n <= 44 for n in accepted), accepted
    assert sum(throttled[2:]) <= 0.05 * sum(accepted[2:]), throttled


def test_follows_a_limit_that_drops_and_recovers() -> None:
    limits = [40.0] * 10 + [20.0] * 10 + [40.0] * 10
    accepted, throttled = simulate(limits)
    # Within a second of the drop the pacer sends at the new limit, and within
    # five seconds of the recovery at the old one again.
    assert all(n >= 0.9 * 20 for n in accepted[11:20]), accepted
    assert all(n >= 0.9 * 40 for n in accepted[25:30]), accepted
    assert sum(accepted[20:25]) >= 0.6 * 5 * 40, accepted
    assert sum(throttled[11:]) <= 0.1 * sum(accepted[11:]), throttled


def test_attached_it_paces_every_attempt_and_counts_throttles() -> None:
    clock = Clock()
    limiter = pacer(clock)
    storm(limiter, clock, limit=10)
    assert limiter.rate is not None
    ssm = MockSSM([error("InternalServerError", "boom", 500)] * 2 + [page([])] * 2)
    client = ssm.client(retries={"mode": "standard", "total_max_attempts": 3})
    limiter.attach(client)
    limiter.attach(client)  # attaching twice changes nothing
    started = clock.now
    client.describe_instance_patches(InstanceId=NODE)
    assert len(ssm.requests) == 3
    assert clock.now - started == pytest.approx(2 / limiter.rate)  # three evenly spaced slots
    limiter.detach(client)  # the requests that follow are not paced
    started = clock.now
    client.describe_instance_patches(InstanceId=NODE)
    assert clock.now == started
    throttles = limiter.throttles
    once = MockSSM([error("ThrottlingException", "Rate exceeded")])
    stingy = once.client(retries={"mode": "standard", "total_max_attempts": 1})
    limiter.attach(stingy)
    with pytest.raises(stingy.exceptions.ThrottlingException):
        stingy.describe_instance_patches(InstanceId=NODE)
    assert limiter.throttles == throttles + 1


def test_a_throttled_request_waits_for_the_pacer_not_for_botocores_backoff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept: list[float] = []  # what botocore waits between attempts
    monkeypatch.setattr("botocore.endpoint.time.sleep", slept.append)
    throttle = error("ThrottlingException", "Rate exceeded")
    clock = Clock()
    limiter = AdaptiveRateLimiter(clock=clock, sleep=clock.sleep, uniform=lambda: 0.5)
    ssm = MockSSM([throttle, throttle, page([])])
    client = ssm.client(retries={"mode": "standard", "total_max_attempts": 3})
    limiter.attach(client)

    def latency(**_: object) -> None:  # every attempt takes 0.2 s to come back
        clock.now += 0.2

    client.meta.events.register_last("before-send", latency)
    client.describe_instance_patches(InstanceId=NODE)
    # No limit measured yet: the injected random share (half) of one round trip,
    # then of two: botocore's backoff, in round trips rather than seconds.
    assert slept == pytest.approx([0.1, 0.2])
    storm(limiter, clock, limit=10)
    assert limiter.rate is not None
    slept.clear()
    ssm = MockSSM([throttle, throttle, page([])])
    client = ssm.client(retries={"mode": "standard", "total_max_attempts": 3})
    limiter.attach(client)
    started = clock.now
    client.describe_instance_patches(InstanceId=NODE)
    # Paced: the retries wait for the pacer's slots, and for nothing else.
    assert slept == [0.0, 0.0] and clock.now > started


def test_throttled_retries_count_against_the_clients_attempts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda _: None)
    clock = Clock()
    limiter = pacer(clock)
    storm(limiter, clock, limit=10)
    ssm = MockSSM([error("ThrottlingException", "Rate exceeded")] * 3 + [page([])])
    client = ssm.client(retries={"mode": "standard", "total_max_attempts": 3})
    limiter.attach(client)
    with pytest.raises(client.exceptions.ThrottlingException):
        client.describe_instance_patches(InstanceId=NODE)
    assert len(ssm.requests) == 3 and ssm.unused() == 1
