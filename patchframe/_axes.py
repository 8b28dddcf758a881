"""Axes helpers every patchframe chart shares: new figures, empty charts, colours, legends."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.ticker import MaxNLocator

from .exceptions import ValidationError

#: Height per horizontal bar of a figure patchframe makes, in inches.
BAR_INCHES = 0.28


def new_axes(ax: Axes | None, *, bars: int = 0, width: float = 8.0) -> Axes:
    """``ax``, or the Axes of a new figure tall enough for ``bars`` horizontal bars."""
    if ax is not None:
        return ax
    height = max(3.0, 1.4 + BAR_INCHES * bars) if bars else 4.5
    _, new = plt.subplots(figsize=(width, height), layout="constrained")
    return new


def no_data(ax: Axes, message: str) -> Axes:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def check_top(top: object, name: str = "top") -> int:
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValidationError(f"{name} {top!r} is not a positive whole number")
    return top


def label_colors(
    labels: Iterable[str], default: Callable[[str], str], palette: Mapping[str, str] | None
) -> dict[str, str]:
    """Each label's colour: the one ``palette`` gives it, else patchframe's ``default``.

    Examples
    --------
    >>> label_colors(["MISSING", "FAILED"], lambda s: "#000000", {"MISSING": "blue"})
    {'MISSING': 'blue', 'FAILED': '#000000'}
    """
    if palette is not None and not isinstance(palette, Mapping):
        raise ValidationError(
            f"palette: expected a mapping of labels to colours, got {type(palette).__name__}"
        )
    chosen = palette or {}
    return {label: chosen.get(label, default(label)) for label in labels}


def legend_outside(ax: Axes, *, title: str | None = None) -> None:
    """The legend right of the plot, where it hides no bar or line."""
    ax.legend(
        title=title, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False
    )


def over_time(ax: Axes, *, legend: bool = True) -> Axes:
    """Dates on x, whole numbers on y, the legend outside: the look of every chart over time."""
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]  # matplotlib's stubs lack it
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if legend:
        legend_outside(ax)
    return ax
