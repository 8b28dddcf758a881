"""The one set of colours for patch states, severity levels and node compliance.

Charts, HTML reprs and the Excel export all take their colours from here, so a
state looks the same everywhere. Red means "not patched" (MISSING, and FAILED
darker still), green means "patched" (INSTALLED, INSTALLED_OTHER lighter), amber
means "patched but not in effect yet", grey means "does not apply". Severity
runs from grey (Unspecified) through yellow and orange to dark red (Critical).
Colours are ``#rrggbb`` strings, which matplotlib, CSS and XlsxWriter all accept.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "COMPLIANCE_COLORS",
    "SEVERITY_COLORS",
    "STATE_COLORS",
    "UNKNOWN_COLOR",
    "severity_color",
    "state_color",
    "state_colors",
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
