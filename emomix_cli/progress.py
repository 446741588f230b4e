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

from collections.abc import Iterator
from contextlib import contextmanager


class ProgressBar:
    """A handle on one bar; every method is a no-op when the bar is not shown."""

    def __init__(self, progress=None, task=None):
        self._progress, self._task = progress, task

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


@contextmanager
def progress_bar(description: str, total: int | None, *, completed: int = 0,
                 enabled: bool = True, transient: bool = False) -> Iterator[ProgressBar]:
    """A bar ``description [████  ] completed/total info elapsed remaining`` on stderr.

    ``enabled=False`` (e.g. ``--no-progress`` or ranks > 0) and a stderr that is not a
    terminal both give a silent bar. ``transient`` removes the bar when the block ends.
    """
    from rich.console import Console

    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield ProgressBar()
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
