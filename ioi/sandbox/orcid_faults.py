"""Fault injection and rate limiting for the ORCID simulator (thread-safe)."""

from __future__ import annotations

import random
import re
import threading
import time
from dataclasses import dataclass


@dataclass
class Fault:
    """What to do to one matching call: fail with `status`, time out/delay, or truncate the body."""

    kind: str  # "status", "timeout", "delay" or "truncate"
    remaining: int
    status: int = 500
    seconds: float = 0.0
    keep: int = 0
    method: str | None = None
    path: re.Pattern[str] | None = None
    put_code: int | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return self.path is None or bool(self.path.search(path))


class FaultPlan:
    """The pending faults, a seeded random failure rate and a fixed added latency."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._random: random.Random | None = None
        self._fraction = 0.0
        self._random_statuses: tuple[int, ...] = (500,)
        self._random_filter: Fault | None = None
        self.latency = 0.0

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def set_random(
        self, fraction: float, seed: int, statuses: tuple[int, ...], method: str | None, path: str | None
    ) -> None:
        with self._lock:
            self._fraction = fraction
            self._random = random.Random(seed)
            self._random_statuses = statuses
            self._random_filter = Fault("status", 0, method=method, path=re.compile(path) if path else None)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._fraction = 0.0
            self._random = None
            self.latency = 0.0

    def take(self, method: str, path: str) -> Fault | None:
        """The fault to apply to this call, if any (consumes one use of a counted fault)."""
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and fault.matches(method, path):
                    fault.remaining -= 1
                    return fault
            self._faults = [f for f in self._faults if f.remaining > 0]
            if self._random and self._fraction > 0 and self._random_filter.matches(method, path):
                if self._random.random() < self._fraction:
                    return Fault("status", 1, status=self._random.choice(self._random_statuses))
        return None

    @property
    def pending(self) -> int:
        with self._lock:
            return sum(f.remaining for f in self._faults)


class TokenBucket:
    """Per-key token buckets: `rate` tokens per second, at most `burst` banked."""

    def __init__(self, rate: float, burst: int, clock=time.monotonic):
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, key: str) -> bool:
        """Take one token for `key`; False when its bucket is empty."""
        with self._lock:
            now = self._clock()
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            allowed = tokens >= 1.0
            self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
            return allowed
