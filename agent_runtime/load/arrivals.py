"""When open-loop requests are sent: the arrival schedule of a load point, drawn as ``vllm bench serve`` draws it.

``vllm bench serve`` (``vllm/benchmarks/serve.py``, ``get_request``) waits a gamma-distributed interval between
requests, with shape ``burstiness`` and scale ``1 / (rate * burstiness)``: the mean interval is ``1 / rate``
whatever the burstiness, and the coefficient of variation of the intervals is ``1 / sqrt(burstiness)``. Poisson
arrivals are burstiness 1 (exponential intervals); ``constant`` arrivals are exactly ``1 / rate`` apart (the limit of
an infinite burstiness); rate ``"inf"`` sends every request at once.

The schedule is absolute: request ``i`` is due at a fixed time after the point's start, so that a late send never pushes
the later ones back. When the point's number of requests is known (``num_requests``), the schedule is normalized as
``vllm bench serve`` normalizes it: it draws one interval per request, and scales their cumulative sums so that the
last one falls at exactly ``count / rate`` (the achieved rate then varies less from seed to seed). ``vllm bench
serve`` also waits for the first interval before its first request; here the point's clock starts at its first
send (``RequestRecord`` times are from the first scheduled send), so every time is shifted back by it. A point sized by
time (``duration_s``) has no count to normalize to, and draws its intervals as it goes.

Randomness: :class:`random.Random` (Mersenne Twister), seeded from the spec's seed, not NumPy's generator. The agent's
base install has no NumPy, and :meth:`random.Random.gammavariate` gives the same sequence for the same seed on every
platform and Python version we support. The schedule therefore follows the same distribution as ``vllm bench
serve``'s (``np.random.gamma``) but not its exact draws: two agents with the same seed draw the same schedule as
each other, not the same as ``vllm bench serve --seed``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from common.protocol.load import INFINITE_RATE, Arrival

__all__ = ["ArrivalSchedule", "arrival_times"]


class ArrivalSchedule:
    """An endless, seeded sequence of send times (seconds from the point's start), first at 0.

    Args:
        rate: Requests per second, or ``"inf"`` (every request due at 0).
        arrival: The arrival process.
        burstiness: Gamma shape (``gamma`` arrivals only; Poisson is 1, constant ignores it).
        seed: Random seed: the same seed gives the same schedule.

    Raises:
        ValueError: A rate that is not positive, or a burstiness that is not positive.
    """

    def __init__(self, rate: float | str, arrival: Arrival | str, burstiness: float = 1.0, seed: int = 0) -> None:
        if isinstance(rate, str):
            if rate != INFINITE_RATE:
                raise ValueError(f'request_rate: must be a number of requests/s or "inf", got {rate!r}')
            self.rate: float | None = None
        else:
            if not rate > 0:
                raise ValueError(f"request_rate: must be above 0, got {rate}")
            self.rate = float(rate)
        if not burstiness > 0:
            raise ValueError(f"burstiness: must be above 0, got {burstiness}")
        self.arrival = Arrival(arrival)
        # Poisson is gamma of shape 1 (vllm bench serve's default burstiness); constant has no randomness at all.
        self.shape = burstiness if self.arrival is Arrival.GAMMA else 1.0
        # A string seed is hashed with SHA-512 by random.Random (stable across runs, unlike hash()): the arrival stream
        # stays independent of any other stream drawn from the same spec seed (the prompt order).
        self._rng = random.Random(f"{seed}:arrivals")  # nosec B311 - a reproducible load schedule, not a secret
        self._next = 0.0

    def interval(self) -> float:
        """The next interval between two sends, seconds (0 at an infinite rate)."""
        if self.rate is None:
            return 0.0
        if self.arrival is Arrival.CONSTANT:
            return 1.0 / self.rate
        # vllm bench serve: np.random.gamma(shape=burstiness, scale=1 / (request_rate * burstiness)).
        return self._rng.gammavariate(self.shape, 1.0 / (self.rate * self.shape))

    def __iter__(self) -> Iterator[float]:
        """Send times from the point's start: 0, then each previous time plus the next interval."""
        while True:
            due = self._next
            self._next = due + self.interval()
            yield due


def arrival_times(
    count: int, rate: float | str, arrival: Arrival | str, burstiness: float = 1.0, seed: int = 0
) -> list[float]:
    """The send times of a point of ``count`` requests, normalized as ``vllm bench serve`` normalizes them.

    Args:
        count: How many send times.
        rate: Requests per second, or ``"inf"``.
        arrival: The arrival process.
        burstiness: Gamma shape (``gamma`` arrivals only).
        seed: Random seed.

    Returns:
        Send times in seconds from the point's start, non-decreasing, the first 0 (see the module docstring).
    """
    if count <= 0:
        return []
    schedule = ArrivalSchedule(rate, arrival, burstiness, seed)
    if schedule.rate is None:
        return [0.0] * count
    # vllm bench serve's get_request: one interval per request, the first before the first request; cumulative sums
    # rescaled so that the last is at count / rate.
    due: list[float] = []
    total = 0.0
    for _ in range(count):
        total += schedule.interval()
        due.append(total)
    scale = (count / schedule.rate) / total if total > 0 else 1.0
    first = due[0] * scale
    return [max(0.0, t * scale - first) for t in due]
