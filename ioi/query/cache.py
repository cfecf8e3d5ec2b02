"""Finished query answers kept in each web worker's memory, reused while the data is unchanged.

An answer is stored with the data version counters read before it was built (`data_versions`,
bumped by every write to `metadata` and `orcids` in the writer's transaction) and is reused only
while the counters are the same and it is younger than QUERY_CACHE_SECONDS. A hit costs one small
SQL statement instead of the works query and the serialisation, which for a person with
thousands of works is most of the request. Memory is bounded by QUERY_CACHE_MB (least recently
used answers go first); 0 turns the cache off.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from cachetools import TTLCache
from flask import Response

from ioi.services import data_versions

DERIVED_HEADERS = ("content-length", "content-type")  # set again when the answer is served
ENTRY_OVERHEAD = 512  # bytes counted per entry besides its body (key, headers, bookkeeping)


@dataclass(frozen=True)
class _Answer:
    versions: tuple[int, ...]
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...]

    def response(self) -> Response:
        return Response(self.body, content_type=self.content_type, headers=list(self.headers))


class AnswerCache:
    """A size-bounded, time-bounded map from a query to its answer; safe to share between threads."""

    def __init__(self, max_bytes: int, max_age: int) -> None:
        self._answers = (
            TTLCache(maxsize=max_bytes, ttl=max_age, getsizeof=lambda a: len(a.body) + ENTRY_OVERHEAD)
            if max_bytes > 0
            else None
        )
        self._lock = threading.Lock()

    def answer(self, key: Hashable, build: Callable[[], Response]) -> Response:
        """The stored answer to `key` if the data is unchanged since it was built, else `build()`
        (stored when it is a complete 200 response)."""
        # The versions are read before the data, so an answer is never older than its versions.
        versions = data_versions.current() if self._answers is not None else None
        if versions is None:
            return build()
        with self._lock:
            stored = self._answers.get(key)
        if stored is not None and stored.versions == versions:
            return stored.response()
        response = build()
        if response.status_code == 200 and not response.is_streamed:
            headers = tuple((k, v) for k, v in response.headers.items() if k.lower() not in DERIVED_HEADERS)
            fresh = _Answer(versions, response.get_data(), response.content_type, headers)
            with self._lock:
                try:
                    self._answers[key] = fresh
                except ValueError:  # larger than the whole cache: serve it, keep nothing
                    pass
        return response
