"""The adaptive pacer, on an injected clock: no test here waits for real."""

from __future__ import annotations

import itertools

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


def pacer(clock: Clock, **kwargs: float) -> AdaptiveRateLimiter:
    return AdaptiveRateLimiter(clock=clock, sleep=clock.sleep, **kwargs)


def storm(limiter: AdaptiveRateLimiter, clock: Clock, *, limit: float) -> None:
    """Half a second and a step of a busy service: throttles, and answers at ``limit``."""
    limiter.on_throttle()
    for _ in range(int(limit / 2) + 1):
        clock.now += 1 / limit
        limiter.on_accepted()
        limiter.on_throttle()


def test_unlimited_before_the_first_throttle() -> None:
    clock = Clock()
    limiter = pacer(clock)
    for _ in range(1000):
        limiter.acquire()
    assert clock.sleeps == [] and limiter.rate is None
    limiter.on_throttle()  # one throttle starts a measurement, it sets no limit yet
    limiter.acquire()
    assert clock.sleeps == [] and limiter.rate is None


def test_the_limit_is_measured_over_a_storm() -> None:
    clock = Clock()
    limiter = pacer(clock, margin=0.9)
    storm(limiter, clock, limit=40)
    assert limiter.rate == pytest.approx(0.9 * 40)


def test_sends_evenly_spaced_at_the_margin_under_the_limit() -> None:
    clock = Clock()
    limiter = pacer(clock)
    storm(limiter, clock, limit=40)
    sent = []
    for _ in range(8):  # eight workers asking at the same instant
        limiter.acquire()
        sent.append(clock.now)
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert gaps == pytest.approx([1 / (0.97 * 40)] * 7)


def busy(limiter: AdaptiveRateLimiter, clock: Clock, seconds: float) -> None:
    """Workers asking for slots without pause, and no throttle, for ``seconds``."""
    end = clock.now + seconds
    while clock.now < end:
        limiter.acquire()


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
    storm(limiter, clock, limit=20)  # drawn by its own pace: the limit itself
    measured = limiter.rate
    assert measured == pytest.approx(0.97 * 20)
    busy(limiter, clock, 0.9)
    assert limiter.rate == measured
    rates = []
    for _ in range(3):
        busy(limiter, clock, 1.0)
        rates.append(limiter.rate)
    assert rates == pytest.approx([measured * 1.05, measured * 1.05 * 1.1, measured * 1.155 * 1.2])
    limiter.on_throttle()  # a lone throttle: a little slower, and the next probe small again
    slowed = limiter.rate
    assert slowed == pytest.approx(0.97 * rates[-1])
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

    The service is a token bucket whose rate, ``limits[s]`` in second ``s``, may
    change; the client needs 5 ms of its own per request.
    """
    clock = Clock()
    start = clock.now
    limiter = pacer(clock)
    tokens, stamp = float(burst), start
    accepted, throttled = [0] * len(limits), [0] * len(limits)
    while True:
        limiter.acquire()
        clock.now += 0.005
        second = int(clock.now - start)
        if second >= len(limits):
            return accepted, throttled
        tokens = min(burst, tokens + (clock.now - stamp) * limits[second])
        stamp = clock.now
        if tokens >= 1:
            tokens -= 1
            accepted[second] += 1
            limiter.on_accepted()
        else:
            throttled[second] += 1
            limiter.on_throttle()


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
    ssm = MockSSM([error("InternalServerError", "boom", 500)] * 2 + [page([])])
    client = ssm.client(retries={"mode": "standard", "total_max_attempts": 3})
    limiter.attach(client)
    limiter.attach(client)  # attaching twice changes nothing
    started = clock.now
    client.describe_instance_patches(InstanceId=NODE)
    assert len(ssm.requests) == 3
    assert clock.now - started == pytest.approx(2 / limiter.rate)  # three evenly spaced slots
    throttles = limiter.throttles
    once = MockSSM([error("ThrottlingException", "Rate exceeded")])
    stingy = once.client(retries={"mode": "standard", "total_max_attempts": 1})
    limiter.attach(stingy)
    with pytest.raises(stingy.exceptions.ThrottlingException):
        stingy.describe_instance_patches(InstanceId=NODE)
    assert limiter.throttles == throttles + 1
