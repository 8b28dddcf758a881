"""Axes helpers every patchframe chart shares: new figures, empty charts, time axes."""

from __future__ import annotations

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


def over_time(ax: Axes) -> Axes:
    """Dates on x, whole numbers on y, the legend outside: the look of every chart over time."""
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]  # matplotlib's stubs lack it
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    return ax
