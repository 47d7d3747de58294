"""Progress of a run over cases: a bar on a terminal, log lines with real rates elsewhere.

A bar redrawn in place is noise in a CI log or behind ``| tee``, and a rate rounded to one
decimal reads "0.0 cases/s" when a case takes a minute. Off a terminal, a line is written after
the first case (an early rate and ETA), then at most every ``every_seconds``, and after the last.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from tqdm import tqdm


def rate_text(done: int, seconds: float) -> str:
    """``1.3 cases/s``, or ``42.0 s/case`` below one case a second (never ``0.0 cases/s``)."""
    per_second = done / max(seconds, 1e-9)
    return f"{per_second:.1f} cases/s" if per_second >= 1 else f"{1 / per_second:.1f} s/case"


def duration_text(seconds: float) -> str:
    """``4.2 s``, ``23 s``, ``12 min``, ``2.5 h``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class CaseProgress:
    """Reports ``total`` cases of ``label`` as they finish; :meth:`advance` after each one."""

    def __init__(
        self,
        label: str,
        total: int,
        *,
        stream: TextIO | None = None,
        every_seconds: float = 10.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.label, self.total, self.every_seconds, self.clock = label, total, every_seconds, clock
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.started = self.last_line = clock()
        self.bar = (
            tqdm(total=total, desc=label, unit="case", file=self.stream)
            if self.stream.isatty()
            else None
        )

    def advance(self, note: str = "") -> None:
        """One more case is done; ``note`` (e.g. the accuracy so far) goes with the report."""
        self.done += 1
        if self.bar is not None:
            self.bar.set_postfix_str(note, refresh=False)
            self.bar.update()
            return
        now = self.clock()
        if self.done in (1, self.total) or now - self.last_line >= self.every_seconds:
            self.last_line = now
            print(self.line(now - self.started, note), file=self.stream, flush=True)

    def line(self, elapsed: float, note: str) -> str:
        """The log line after ``self.done`` cases in ``elapsed`` seconds."""
        head = f"{self.label}: {self.done}/{self.total} cases"
        if self.done == self.total:
            head += f" in {duration_text(elapsed)}"
            timing = rate_text(self.done, elapsed)
        else:
            left = (self.total - self.done) * elapsed / self.done
            timing = f"{rate_text(self.done, elapsed)}, ETA {duration_text(left)}"
        return ", ".join(part for part in (head, timing, note) if part)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
