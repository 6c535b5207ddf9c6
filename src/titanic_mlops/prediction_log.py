"""The prediction log's writer: what the service saw and answered, as sharded JSONL objects.

Each serving process buffers records (defined in ``predictions.py``, with their object
names and the reader) and writes them as *new* objects (create-only)::

    predictions/dt=YYYY-MM-DD/HH/<utc-ts>-<instance>-<seq>.jsonl

flushed by count, by age and at shutdown. There is no read-modify-write of a growing blob:
that would lose records under concurrency and cost O(history) per request. A failed write
keeps its batch *and its object name*, so the retry is idempotent (a create that finds the
object already there means the earlier attempt landed). The buffer is bounded; what does
not fit while storage is down is dropped and counted in a metric, never silently.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from titanic_mlops.monitoring import metrics
from titanic_mlops.predictions import PredictionRecord, object_key
from titanic_mlops.settings import PredictionLogSettings
from titanic_mlops.storage import PreconditionFailed, Storage

log = logging.getLogger(__name__)

_WRITE_LATENCY = metrics.STORAGE_WRITE_LATENCY.labels("prediction_log")


def encode_record(record: PredictionRecord | dict[str, Any]) -> str:
    """One compact JSON Lines line (orjson: every request appends records)."""
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE).decode()


@dataclass
class _Batch:
    key: str
    payload: bytes
    count: int


class PredictionLog:
    """Buffered, bounded, retrying writer of prediction records for one process."""

    def __init__(
        self,
        storage: Storage,
        settings: PredictionLogSettings,
        instance: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.storage = storage
        self.settings = settings
        self.instance = instance
        self._clock = clock
        # Records are serialised as they arrive, in the request threads: a flusher that
        # encoded hundreds at once would hold the GIL for milliseconds and stall requests.
        self._buffer: deque[str] = deque()
        self._pending: deque[_Batch] = deque()  # cut into objects, not yet written
        self._in_flight: _Batch | None = None  # the batch a flush is writing right now
        self._oldest: float | None = None  # monotonic time of the oldest buffered record
        self._seq = 0
        self._lock = threading.Lock()  # guards _buffer, _pending, _oldest
        self._write_lock = threading.Lock()  # one writer at a time keeps objects in order
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    # --- producer side ---------------------------------------------------------------
    def append(self, records: list[PredictionRecord]) -> None:
        """Buffer records (never blocks on storage)."""
        if self._closed.is_set():  # after shutdown: nothing would ever write them
            metrics.LOG_RECORDS_DROPPED.inc(len(records))
            log.error("prediction log closed: dropped %d records (counted)", len(records))
            return
        lines = [encode_record(r) for r in records]
        with self._lock:
            if self._oldest is None:
                self._oldest = time.monotonic()
            self._buffer.extend(lines)
            if len(self._buffer) + self._pending_records > self.settings.max_buffer_records:
                self._enforce_bound()
            if len(self._buffer) >= self.settings.flush_records:
                self._wake.set()
        if self._thread is None or not self._thread.is_alive():
            self._ensure_thread()

    @property
    def _pending_records(self) -> int:
        return sum(b.count for b in self._pending)  # a handful of batches at most

    def buffered(self) -> int:
        """Records held in memory (buffered or cut into pending objects)."""
        with self._lock:
            return len(self._buffer) + self._pending_records

    def _enforce_bound(self) -> None:
        # Caller holds self._lock.
        excess = len(self._buffer) + self._pending_records - self.settings.max_buffer_records
        dropped = 0
        # Oldest first: whole pending objects (their name may already be taken), then
        # records; never the batch being written (it may land: that is not a drop).
        for batch in [b for b in self._pending if b is not self._in_flight]:
            if excess <= 0:
                break
            self._pending.remove(batch)
            excess -= batch.count
            dropped += batch.count
        while excess > 0 and self._buffer:
            self._buffer.popleft()
            excess -= 1
            dropped += 1
        if dropped:
            metrics.LOG_RECORDS_DROPPED.inc(dropped)
            log.error("prediction log buffer full: dropped %d records (counted)", dropped)
        metrics.LOG_BUFFERED.set(len(self._buffer) + self._pending_records)

    # --- writer side -----------------------------------------------------------------
    def _cut(self) -> None:
        # Caller holds self._lock.
        if not self._buffer:
            return
        payload = "".join(self._buffer).encode()
        count = len(self._buffer)
        self._buffer.clear()
        self._oldest = None
        self._seq += 1
        key = object_key(self._clock(), self.instance, self._seq)
        self._pending.append(_Batch(key, payload, count))

    def flush(self, wait: float | None = None) -> bool:
        """Write everything buffered now; False if a write failed (records kept) or if another
        flush held the writer for longer than ``wait`` seconds."""
        if not self._write_lock.acquire(timeout=-1 if wait is None else max(wait, 0.0)):
            return False
        try:
            with self._lock:
                self._cut()
            while True:
                with self._lock:
                    if not self._pending:
                        metrics.LOG_BUFFERED.set(len(self._buffer))
                        return True
                    batch = self._in_flight = self._pending[0]
                started = time.perf_counter()
                try:
                    self.storage.create(batch.key, batch.payload)
                except PreconditionFailed:
                    # Same name, same instance: an earlier attempt did land. Not a duplicate.
                    log.warning("prediction log %s already written by a retried attempt", batch.key)
                except Exception as exc:
                    metrics.LOG_WRITE_ERRORS.inc()
                    log.warning("prediction log write of %d records failed: %s", batch.count, exc)
                    return False
                finally:
                    _WRITE_LATENCY.observe(time.perf_counter() - started)
                    with self._lock:
                        self._in_flight = None
                with self._lock:
                    self._pending.remove(batch)
                    metrics.LOG_RECORDS_WRITTEN.inc(batch.count)
        finally:
            self._write_lock.release()

    def _due(self) -> bool:
        with self._lock:
            if self._pending or len(self._buffer) >= self.settings.flush_records:
                return True
            age = time.monotonic() - self._oldest if self._oldest is not None else 0.0
            return bool(self._buffer) and age >= self.settings.flush_seconds

    def _run(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(timeout=min(self.settings.flush_seconds, 1.0))
            self._wake.clear()
            metrics.LOG_BUFFERED.set(self.buffered())
            if self._closed.is_set():
                break
            if self._due() and not self.flush():
                self._closed.wait(self.settings.retry_seconds)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(
                        target=self._run, name="prediction-log-flusher", daemon=True
                    )
                    self._thread.start()

    def close(self, timeout: float = 8.0) -> bool:
        """Stop the flusher and write what is left, retrying until ``timeout``.

        Cloud Run allows 10 s after SIGTERM, hence the default. Returns True when nothing
        is left in memory.
        """
        deadline = time.monotonic() + timeout
        self._closed.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        while not self.flush(wait=deadline - time.monotonic()):
            if time.monotonic() + self.settings.retry_seconds > deadline:
                left = self.buffered()
                log.error("prediction log closing with %d unwritten records", left)
                metrics.LOG_RECORDS_DROPPED.inc(left)
                return False
            time.sleep(self.settings.retry_seconds)
        return True
