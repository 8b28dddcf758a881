"""Progress bars only where someone watches: the one convention for loads and exports.

Every long operation of patchframe takes ``progress: bool | None = None``:

- ``None`` (the default) shows a bar when someone is watching: in a Jupyter
  notebook (an IPython kernel is running), or when stderr is an interactive
  terminal; and nothing otherwise, so a log file or a CI job never fills with
  carriage returns;
- ``True`` forces the bar, ``False`` hides it.

:func:`progress_bar` makes the bar (tqdm.auto: a widget in a notebook, text in a
terminal); it is a context manager with ``update(n)`` and ``set_postfix(...)``,
made for a loader (``unit="node"``) as well as a writer (``unit="row"``).
"""

from __future__ import annotations

import sys
from typing import Any

from tqdm.auto import tqdm

__all__ = ["progress_bar", "showing_progress"]


def _in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (without importing IPython when it is not)."""
    if "ipykernel" not in sys.modules:
        return False
    ipython = sys.modules.get("IPython")
    shell = None if ipython is None else ipython.get_ipython()
    return getattr(shell, "kernel", None) is not None


def _stderr_is_terminal() -> bool:
    stream = sys.stderr
    try:
        return stream is not None and stream.isatty()
    except ValueError:  # a closed stream
        return False


def showing_progress(progress: bool | None) -> bool:
    """Whether a bar is shown for ``progress``: forced by True or False, else where watched.

    Examples
    --------
    >>> showing_progress(True), showing_progress(False)
    (True, False)
    >>> showing_progress(None)  # doctests write to no terminal and run in no notebook
    False
    """
    if progress is not None:
        return bool(progress)
    return _in_notebook() or _stderr_is_terminal()


def progress_bar(
    total: int | None, *, description: str, unit: str, progress: bool | None = None
) -> tqdm[Any]:
    """A progress bar that follows the convention of the module documentation.

    Parameters
    ----------
    total
        How many units the whole operation is; None when unknown.
    description
        Shown before the bar: what is being done (``"patches"``, ``"workbook"``).
    unit
        What one step is (``"node"``, ``"row"``).
    progress
        None: a bar only in a notebook or on an interactive terminal; True or
        False: always or never.

    Returns
    -------
    tqdm.auto.tqdm
        Use it as a context manager; ``update(n)`` after each ``n`` units. A hidden
        bar takes the same calls and writes nothing.

    Examples
    --------
    >>> with progress_bar(3, description="nodes", unit="node", progress=False) as bar:
    ...     for _ in range(3):
    ...         _ = bar.update(1)
    ...     bar.set_postfix(errors=0)
    >>> bar.disable
    True
    """
    return tqdm(
        total=total,
        desc=description,
        unit=unit,
        disable=not showing_progress(progress),
    )
