"""Counting a transfer and showing it: rich bar on a terminal, JSON lines, or nothing.

The engine only calls ``Stats`` methods; each change is handed to one
callback with the event name, so the library API needs no rich import and a
script gets the same numbers the bar shows.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Self, TextIO

from .units import human_bytes, plural


@dataclass
class Snapshot:
    total_objects: int = 0
    total_bytes: int = 0
    done_objects: int = 0
    done_bytes: int = 0
    skipped: int = 0
    failed: int = 0
    deleted: int = 0
    elapsed: float = 0.0

    @property
    def rate(self) -> float:
        return self.done_bytes / self.elapsed if self.elapsed > 0 else 0.0


#: callback(event, key, snapshot); event is "plan", "bytes", "done", "skip", "fail", "delete", "end"
ProgressCallback = Callable[[str, "str | None", Snapshot], None]


class Stats:
    """Thread-safe counters shared by the transfer workers."""

    def __init__(self, callback: ProgressCallback | None = None):
        self._lock = threading.Lock()
        self._snap = Snapshot()
        self._t0 = time.monotonic()
        self._cb = callback

    def snapshot(self) -> Snapshot:
        with self._lock:
            s = Snapshot(**asdict(self._snap))
        s.elapsed = time.monotonic() - self._t0
        return s

    def _emit(self, event: str, key: str | None) -> None:
        if self._cb is not None:
            self._cb(event, key, self.snapshot())

    def planned(self, objects: int, nbytes: int) -> None:
        with self._lock:
            self._snap.total_objects += objects
            self._snap.total_bytes += nbytes
        self._emit("plan", None)

    def add_bytes(self, n: int, key: str | None = None) -> None:
        with self._lock:
            self._snap.done_bytes += n
        self._emit("bytes", key)

    def undo_bytes(self, n: int) -> None:
        """A failed attempt's bytes will be sent again: don't count them twice."""
        with self._lock:
            self._snap.done_bytes -= n

    def done(self, key: str) -> None:
        with self._lock:
            self._snap.done_objects += 1
        self._emit("done", key)

    def skip(self, key: str, nbytes: int = 0) -> None:
        with self._lock:
            self._snap.skipped += 1
        self._emit("skip", key)

    def fail(self, key: str) -> None:
        with self._lock:
            self._snap.failed += 1
        self._emit("fail", key)

    def deleted(self, key: str) -> None:
        with self._lock:
            self._snap.deleted += 1
        self._emit("delete", key)

    def end(self) -> None:
        self._emit("end", None)


def summary_line(s: Snapshot) -> str:
    return (f"{plural(s.done_objects, 'object')}, {human_bytes(s.done_bytes)} in "
            f"{s.elapsed:.1f}s ({human_bytes(s.rate)}/s), {s.skipped} skipped, "
            f"{s.deleted} deleted, {s.failed} failed")


class JsonLines:
    """One JSON object per line: every object event, byte events at most every 0.5 s."""

    def __init__(self, out: TextIO = sys.stdout, interval: float = 0.5):
        self.out = out
        self.interval = interval
        self._last = 0.0
        self._lock = threading.Lock()

    def __call__(self, event: str, key: str | None, s: Snapshot) -> None:
        now = time.monotonic()
        with self._lock:
            if event in ("bytes", "plan") and now - self._last < self.interval:
                return
            self._last = now
            rec = {"event": event, "key": key, **asdict(s), "rate": round(s.rate, 1)}
            rec["elapsed"] = round(s.elapsed, 3)
            self.out.write(json.dumps(rec, ensure_ascii=False) + "\n")
            self.out.flush()


class RichBar:
    """A terminal bar: bytes, objects, rate, ETA. Use as a context manager."""

    def __init__(self, description: str = "copying"):
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            ProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.text import Text

        class Speed(ProgressColumn):
            """rich's own speed column counts in MB/s; omnifs writes MiB/s everywhere."""

            def render(self, task) -> Text:
                speed = task.finished_speed or task.speed
                return Text("?" if speed is None else f"{human_bytes(speed)}/s",
                            style="progress.data.speed")

        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(binary_units=True),
            TextColumn("{task.fields[objects]}"), Speed(), TimeRemainingColumn(),
            transient=True, console=None,
        )
        self._task = self._progress.add_task(description, total=None, objects="")

    def __enter__(self) -> Self:
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()

    def __call__(self, event: str, key: str | None, s: Snapshot) -> None:
        self._progress.update(
            self._task, total=s.total_bytes or None, completed=s.done_bytes,
            objects=f"{s.done_objects}/{s.total_objects} obj"
                    + (f", {s.failed} failed" if s.failed else ""))
