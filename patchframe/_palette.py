"""The one set of colours for patch states, severity levels and node compliance.

Charts, HTML reprs and the Excel export all take their colours from here, so a
state looks the same everywhere. Red means "not patched" (MISSING, and FAILED
darker still), green means "patched" (INSTALLED, INSTALLED_OTHER lighter), amber
means "patched but not in effect yet", grey means "does not apply". Severity
runs from grey (Unspecified) through yellow and orange to dark red (Critical).
Colours are ``#rrggbb`` strings, which matplotlib, CSS and XlsxWriter all accept.

Text on a coloured patch (a table cell, a workbook cell, a heatmap cell) is black
or white by one rule, :func:`text_color`: whichever has the higher WCAG 2 contrast
ratio against the background.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "COMPLIANCE_COLORS",
    "SEVERITY_COLORS",
    "STATE_COLORS",
    "UNKNOWN_COLOR",
    "contrast_ratio",
    "relative_luminance",
    "severity_color",
    "state_color",
    "state_colors",
    "text_color",
    "tint",
]

#: One colour per patch state of the API model.
STATE_COLORS: dict[str, str] = {
    "INSTALLED": "#2e9e44",
    "INSTALLED_OTHER": "#9ad39c",
    "INSTALLED_PENDING_REBOOT": "#f2a93b",
    "INSTALLED_REJECTED": "#8e6bbf",
    "MISSING": "#e0302b",
    "NOT_APPLICABLE": "#c8c8c8",
    "FAILED": "#8b0a0a",
    "AVAILABLE_SECURITY_UPDATE": "#f7d046",
}

#: One colour per severity level, Unspecified to Critical.
SEVERITY_COLORS: dict[str, str] = {
    "Unspecified": "#bdbdbd",
    "Low": "#fee391",
    "Medium": "#fdae61",
    "High": "#e6550d",
    "Critical": "#a50f15",
}

#: One colour per node compliance status, as in ``Fleet.nodes["compliance"]``.
COMPLIANCE_COLORS: dict[str, str] = {
    "COMPLIANT": STATE_COLORS["INSTALLED"],
    "NON_COMPLIANT": STATE_COLORS["MISSING"],
    "NOT_SCANNED": STATE_COLORS["NOT_APPLICABLE"],
}

#: The colour of a state or level that patchframe does not know yet.
UNKNOWN_COLOR = "#5f5f5f"


def state_color(state: str) -> str:
    """The colour of a patch state (upper snake case); states nobody knows yet share one.

    Examples
    --------
    >>> state_color("MISSING")
    '#e0302b'
    >>> state_color("SOME_NEW_STATE") == UNKNOWN_COLOR
    True
    """
    return STATE_COLORS.get(state, UNKNOWN_COLOR)


def state_colors(states: Iterable[str]) -> list[str]:
    """The colours of several states, in order.

    Examples
    --------
    >>> state_colors(["INSTALLED", "FAILED"])
    ['#2e9e44', '#8b0a0a']
    """
    return [state_color(s) for s in states]


def severity_color(level: str) -> str:
    """The colour of a severity level (``"Critical"`` ... ``"Unspecified"``).

    Examples
    --------
    >>> severity_color("Critical")
    '#a50f15'
    """
    return SEVERITY_COLORS.get(level, UNKNOWN_COLOR)


# Contrast: one rule for every place text sits on a colour.

_BLACK, _WHITE = "#000000", "#ffffff"


def _channels(color: str) -> tuple[int, int, int]:
    """The red, green and blue of ``#rrggbb``, 0 to 255."""
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def relative_luminance(color: str) -> float:
    """WCAG 2's relative luminance of ``#rrggbb``: 0 for black, 1 for white.

    Examples
    --------
    >>> relative_luminance("#000000"), relative_luminance("#ffffff")
    (0.0, 1.0)
    """
    linear = [
        c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
        for c in (v / 255 for v in _channels(color))
    ]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(first: str, second: str) -> float:
    """WCAG 2's contrast ratio of two ``#rrggbb`` colours: 1 (none) to 21 (black on white).

    Examples
    --------
    >>> round(contrast_ratio("#000000", "#ffffff"), 1)
    21.0
    """
    lighter, darker = sorted((relative_luminance(first), relative_luminance(second)))[::-1]
    return (lighter + 0.05) / (darker + 0.05)


def text_color(background: str) -> str:
    """Black or white, whichever has the higher contrast ratio on ``background``.

    The one rule for text on a coloured patch: the workbook's cells, the HTML
    tables and the charts all use it, so MISSING reads the same everywhere.

    Examples
    --------
    >>> text_color(STATE_COLORS["MISSING"]), text_color(STATE_COLORS["FAILED"])
    ('#000000', '#ffffff')
    """
    on_black = contrast_ratio(background, _BLACK)
    return _BLACK if on_black >= contrast_ratio(background, _WHITE) else _WHITE


def tint(color: str, strength: float) -> str:
    """``color`` mixed into white: ``strength`` 0 gives white, 1 the colour itself.

    Examples
    --------
    >>> tint("#e0302b", 0.3), tint("#e0302b", 1.0)
    ('#f6c1bf', '#e0302b')
    """
    return "#" + "".join(f"{round(255 - (255 - c) * strength):02x}" for c in _channels(color))
