"""Statistics of a run: sorted samples and their percentiles, latencies the load workers
send back as packed arrays of doubles, CDFs, timelines and end-to-end pairing.
"""

from __future__ import annotations

from array import array
from collections import defaultdict
from typing import Any


class Dist:
    """A sorted sample of values, with percentiles (linear interpolation, like numpy's)."""

    def __init__(self, values: Any) -> None:
        self.v = sorted(values)

    def __len__(self) -> int:
        return len(self.v)

    def q(self, q: float) -> float:
        v = self.v
        pos = (len(v) - 1) * q / 100.0
        lo = int(pos)
        hi = min(lo + 1, len(v) - 1)
        return v[lo] + (v[hi] - v[lo]) * (pos - lo)

    def max(self) -> float:
        return self.v[-1]


def lat_array(blobs: list[bytes]) -> Dist:
    arr = array("d")
    for b in blobs:
        arr.frombytes(b)
    return Dist(arr)


def pct(values: Dist, q: float) -> float | None:
    if len(values) == 0:
        return None
    return round(values.q(q), 2)


def cdf(arr: Dist, points: int = 60) -> list[list[float]]:
    if len(arr) == 0:
        return []
    qs = [100.0 * i / (points - 1) for i in range(points)]
    return [[round(q, 2), round(arr.q(q), 2)] for q in qs]


def latency_timeline(cols: Any, t0: float, step: float = 0.5) -> list[list[float]]:
    """Event latency p50 and p99 per ``step`` seconds of the run: [[t, p50, p99, n], ...]."""
    buckets: dict[int, list[float]] = defaultdict(list)
    for r in cols:
        lat, times = array("d"), array("d")
        lat.frombytes(r["latencies"])
        times.frombytes(r["latency_times"])
        for v, t in zip(lat, times, strict=True):
            buckets[int((t - t0) / step)].append(v)
    out = []
    for k in sorted(buckets):
        d = Dist(buckets[k])
        out.append([round(k * step, 2), round(d.q(50), 1), round(d.q(99), 1), len(d)])
    return out


def end_to_end(sends: dict[str, list[float]], viewers: list[dict[str, list[float]]]) -> Any:
    """Gift sent -> gift event received, pairing the k-th event from a gifter with the k-th
    gift that gifter sent (requests of one connection are handled in order)."""
    out: list[float] = []
    for recv in viewers:
        for user, times in recv.items():
            sent = sends.get(user)
            if not sent:
                continue
            out.extend((r - t) * 1000.0 for r, t in zip(times, sent, strict=False))
    return Dist(out)
