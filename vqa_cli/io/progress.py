"""Progress bars on stderr, shown only when stderr is a terminal."""

from __future__ import annotations

import sys


def progress_bar():
    """A rich Progress on stderr; disabled (but still usable) when stderr is not a terminal."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    console = Console(stderr=True, highlight=False)
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        disable=not sys.stderr.isatty(),
        transient=False,
    )
