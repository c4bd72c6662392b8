"""The demo's progress: videos done/total, bytes, rate and time left, read from the run record as it fills.

Two forms, because a person reads one and a pipe keeps the other: on a terminal, one bar rewritten in place
(`\\r`); anywhere else (a pipe, a file, CI), a plain line every few seconds, and always the final one, so a log
of the run ends with the numbers the run ended with.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

BAR_WIDTH = 20
MB = 1e6


@dataclass(frozen=True)
class Snapshot:
    """Where the run stands: videos finished (archived, deleted at the source or failed) and bytes archived."""

    done: int
    failed: int
    bytes_done: int


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Renders `read()` as a bar (terminal) or plain lines (else). Call it often; call `finish` once at the end.

    `total_bytes` is None when the sizes are unknown (then the time left is estimated from the video count).
    """

    def __init__(
        self,
        read: Callable[[], Snapshot | None],
        *,
        total_videos: int,
        total_bytes: int | None,
        stream: IO[str],
        bar: bool | None = None,
        interval: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._total_videos = total_videos
        self._total_bytes = total_bytes or None
        self._stream = stream
        self._bar = stream.isatty() if bar is None else bar
        self._interval = interval
        self._clock = clock
        self._started = clock()
        self._last: Snapshot | None = None
        self._last_printed = ""
        self._last_print_at = float("-inf")

    @property
    def is_bar(self) -> bool:
        return self._bar

    def __call__(self) -> None:
        snapshot = self._read()
        if snapshot is None:
            return
        self._last = snapshot
        now = self._clock()
        if not self._bar and now - self._last_print_at < self._interval:
            return
        self._emit(snapshot, now)

    def finish(self) -> None:
        """The final state, always shown: a pipe's last progress line is the run's last word on it."""
        snapshot = self._read() or self._last
        if snapshot is not None:
            self._emit(snapshot, self._clock(), final=True)
        if self._bar and self._last_printed:
            self._stream.write("\n")
            self._stream.flush()

    def _emit(self, snapshot: Snapshot, now: float, *, final: bool = False) -> None:
        text = self.render(snapshot, now - self._started)
        if text == self._last_printed and not self._bar:
            return  # nothing new to say; a repeated plain line is noise
        self._last_printed, self._last_print_at = text, now
        if self._bar:
            self._stream.write("\r" + text.ljust(79))
        else:
            self._stream.write(("progress (final): " if final else "progress: ") + text + "\n")
        self._stream.flush()

    def render(self, snapshot: Snapshot, elapsed: float) -> str:
        total = self._total_videos
        fraction = self._fraction(snapshot)
        rate = snapshot.bytes_done / MB / elapsed if elapsed > 0 else 0.0
        size = f"{snapshot.bytes_done / MB:.1f}"
        size += f"/{self._total_bytes / MB:.1f} MB" if self._total_bytes else " MB"
        parts = [f"{snapshot.done}/{total} videos", size, f"{rate:.1f} MB/s", self._time_left(fraction, elapsed)]
        if snapshot.failed:
            parts.append(f"{snapshot.failed} failed")
        if not self._bar:
            return ", ".join(parts)
        filled = round(BAR_WIDTH * fraction)
        return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] " + "  ".join(parts)

    def _fraction(self, snapshot: Snapshot) -> float:
        if self._total_videos and snapshot.done >= self._total_videos:
            return 1.0
        if self._total_bytes:
            return min(1.0, snapshot.bytes_done / self._total_bytes)
        return min(1.0, snapshot.done / self._total_videos) if self._total_videos else 1.0

    @staticmethod
    def _time_left(fraction: float, elapsed: float) -> str:
        if fraction >= 1.0:
            return f"done in {format_duration(elapsed)}"
        if fraction <= 0 or elapsed <= 0:
            return "time left unknown"
        return f"{format_duration(elapsed * (1 - fraction) / fraction)} left"
