"""Progress of a long command: a tqdm bar on a terminal; in a log (stderr not a terminal) one line every few
seconds and a final line, so a job on a headless server shows it is alive and when it will end."""
from __future__ import annotations

import os
import sys
import time
from typing import IO

# Seconds between two log lines when stderr is not a terminal; NGRENDER_PROGRESS_INTERVAL overrides it.
LOG_INTERVAL = 5.0


def _log_interval() -> float:
    text = os.environ.get("NGRENDER_PROGRESS_INTERVAL", "")
    try:
        value = float(text)
    except ValueError:
        return LOG_INTERVAL
    return value if value >= 0 else LOG_INTERVAL


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Progress:
    """``with Progress(total, "frames", "video") as bar: ... bar.update()``. ``initial`` counts work already
    done (a resumed run); the rate and the ETA count only this run's work. ``stream`` defaults to stderr;
    ``enabled=False`` shows nothing (library calls and tests that want quiet)."""

    def __init__(self, total: int, unit: str, desc: str, initial: int = 0, stream: IO[str] | None = None,
                 interval: float | None = None, enabled: bool = True) -> None:
        self.total, self.unit, self.desc, self.n = int(total), unit, desc, int(initial)
        self._initial = self.n
        self._stream = None if not enabled else stream if stream is not None else sys.stderr
        self._interval = _log_interval() if interval is None else interval
        self._start = self._last = time.perf_counter()
        self._postfix = ""
        self._closed = False
        self._bar = None
        if self._stream is not None and _is_terminal(self._stream):
            from tqdm import tqdm
            self._bar = tqdm(total=self.total, initial=self.n, unit=unit, desc=desc, file=self._stream,
                             dynamic_ncols=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # a failure's own message is the last word (one error line): no final progress line after it
        self.close(final_line=exc_type is None)

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
            return
        if self._stream is None:
            return
        now = time.perf_counter()
        if now - self._last >= self._interval and self.n < self.total:
            self._last = now
            self._say(self.line(now))

    def set_postfix(self, **values: str) -> None:
        """Figures shown after the count (e.g. loss=0.0012), on the bar or at the end of each log line."""
        self._postfix = ", ".join(f"{k}={v}" for k, v in values.items())
        if self._bar is not None:
            self._bar.set_postfix(values, refresh=False)

    def write(self, text: str, file: IO[str] | None = None) -> None:
        """A line of output (stdout unless ``file``) that does not break the bar, shown even when disabled."""
        file = sys.stdout if file is None else file
        if self._bar is not None:
            self._bar.write(text, file=file)
        else:
            print(text, file=file, flush=True)

    def line(self, now: float | None = None) -> str:
        """``desc: 12/48 frames (25%), 1.9 frames/s, ETA 19 s``; at the end the time it took instead of the ETA."""
        elapsed = (time.perf_counter() if now is None else now) - self._start
        done = self.n - self._initial
        rate = done / elapsed if elapsed > 0 else 0.0
        percent = f" ({100 * self.n / self.total:.0f}%)" if self.total > 0 else ""
        parts = [f"{self.desc}: {self.n}/{self.total} {self.unit}{percent}"]
        if done > 0:
            parts.append(f"{rate:.0f} {self.unit}/s" if rate >= 100 else f"{rate:.3g} {self.unit}/s")
        if self.n >= self.total or self._closed:
            parts.append(f"took {_duration(elapsed)}")
        elif rate > 0:
            parts.append(f"ETA {_duration((self.total - self.n) / rate)}")
        if self._postfix:
            parts.append(self._postfix)
        return ", ".join(parts)

    def close(self, final_line: bool = True) -> None:
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif final_line:
            self._say(self.line())

    def _say(self, text: str) -> None:
        try:
            if self._stream is not None:
                print(text, file=self._stream, flush=True)
        except (OSError, ValueError):  # a closed or broken log must not stop the work
            pass


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
