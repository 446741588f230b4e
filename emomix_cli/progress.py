"""The one progress bar of emomix: a rich bar on stderr, drawn only on a terminal.

Every long loop (prep, embeddings, evaluation, training) uses :func:`progress_bar`, so bars
look alike, never go to stdout (which carries results) and never fill a log file or a CI
transcript with redrawn bars::

    with progress_bar("embeddings", total=len(items)) as bar:
        for item in items:
            ...
            bar.advance()
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


def format_duration(seconds: float) -> str:
    """``3725`` -> ``"1:02:05"`` (hours:minutes:seconds)."""
    minutes, secs = divmod(int(round(max(seconds, 0.0))), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def eta_seconds(completed: int, total: int | None, rate: float, seconds_left: float | None = None,
                ) -> float | None:
    """Seconds until ``total`` units at ``rate`` units/s, or until a time budget ends
    (``seconds_left``) when that comes first; None when neither is known."""
    candidates = [] if seconds_left is None else [max(seconds_left, 0.0)]
    if total is not None and rate > 0:
        candidates.append(max(total - completed, 0) / rate)
    return min(candidates) if candidates else None


class ProgressBar:
    """A handle on one bar; every method is a no-op when the bar is not shown, except
    :meth:`line` of a bar made with ``plain_lines`` off a terminal."""

    def __init__(self, progress=None, task=None, plain: tuple[str, int | None] | None = None):
        self._progress, self._task = progress, task
        self._plain = plain  # (description, total) when plain lines replace the bar

    @property
    def shown(self) -> bool:
        return self._progress is not None

    def advance(self, n: int = 1) -> None:
        """``n`` more units done."""
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def update(self, completed: int | None = None, info: str | None = None) -> None:
        """Set the units done (absolute) and/or the text shown after the counter."""
        if self._progress is None:
            return
        fields = {} if info is None else {"info": info}
        self._progress.update(self._task, completed=completed, **fields)

    def line(self, completed: int, info: str, rate: float, seconds_left: float | None = None) -> None:
        """Off a terminal (a log file, ``nohup``), one plain line on stderr, e.g.
        ``train 500/20000 loss 1.2345 2.10 steps/s ETA 2:34:10`` (the ETA is the sooner of the
        last unit and a time budget's end, ``seconds_left``); a no-op where the bar is drawn."""
        if self._plain is None:
            return
        description, total = self._plain
        eta = eta_seconds(completed, total, rate, seconds_left)
        print(f"{description} {completed}/{total if total is not None else '?'} {info} {rate:.2f} steps/s"
              + ("" if eta is None else f" ETA {format_duration(eta)}"), file=sys.stderr, flush=True)


@contextmanager
def progress_bar(description: str, total: int | None, *, completed: int = 0,
                 enabled: bool = True, transient: bool = False, plain_lines: bool = False,
                 ) -> Iterator[ProgressBar]:
    """A bar ``description [████  ] completed/total info elapsed remaining`` on stderr.

    ``enabled=False`` (e.g. ``--no-progress`` or ranks > 0) and a stderr that is not a
    terminal both give a silent bar; off a terminal, ``plain_lines`` lets the caller print plain
    lines instead (:meth:`ProgressBar.line`, training). ``transient`` removes the bar when the
    block ends.
    """
    from rich.console import Console

    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield ProgressBar(plain=(description, total) if enabled and plain_lines else None)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console, transient=transient,
    )  # fmt: skip
    with progress:
        task = progress.add_task(description, total=total, completed=completed, info="")
        yield ProgressBar(progress, task)
