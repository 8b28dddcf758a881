"""The palette: one colour per state, level and status, and one contrast rule for text on
them, which the workbook, the HTML tables and the charts all follow."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from frames import patches_from_rows
from matplotlib.colors import to_hex

from patchframe import plots
from patchframe._html import style_states
from patchframe._palette import (
    COMPLIANCE_COLORS,
    SEVERITY_COLORS,
    STATE_COLORS,
    UNKNOWN_COLOR,
    contrast_ratio,
    relative_luminance,
    state_color,
    text_color,
    tint,
)
from patchframe.export import to_excel

EVERY_COLOR = sorted(
    {*STATE_COLORS.values(), *SEVERITY_COLORS.values(), *COMPLIANCE_COLORS.values()}
)
#: A severity level for each state, every level at least once.
LEVELS = ([*SEVERITY_COLORS] * 2)[: len(STATE_COLORS)]


def test_state_colours_read_bad_and_good() -> None:
    def redness(colour: str) -> float:
        r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
        return float(r - max(g, b))

    for bad in ("MISSING", "FAILED"):
        assert redness(STATE_COLORS[bad]) > 100
    assert np.argmax([int(STATE_COLORS["INSTALLED"][i : i + 2], 16) for i in (1, 3, 5)]) == 1
    assert len(set(STATE_COLORS.values())) == len(STATE_COLORS)
    assert state_color("SOME_NEW_STATE") == UNKNOWN_COLOR


@pytest.mark.parametrize(
    ("background", "luminance"),
    [("#000000", 0.0), ("#ffffff", 1.0), ("#808080", 0.2158605), ("#ff0000", 0.2126)],
)
def test_relative_luminance_is_wcags(background: str, luminance: float) -> None:
    assert relative_luminance(background) == pytest.approx(luminance)


def test_text_color_takes_the_higher_contrast() -> None:
    for background in [*EVERY_COLOR, UNKNOWN_COLOR, "#777777", "#767676", "#0000ff"]:
        chosen = text_color(background)
        other = "#ffffff" if chosen == "#000000" else "#000000"
        assert contrast_ratio(background, chosen) >= contrast_ratio(background, other)
    # The pairs the issue named: MISSING takes black text, FAILED and Critical white.
    assert text_color(STATE_COLORS["MISSING"]) == "#000000"
    assert text_color(STATE_COLORS["FAILED"]) == text_color(SEVERITY_COLORS["Critical"])
    assert text_color(STATE_COLORS["FAILED"]) == "#ffffff"


def test_tint_mixes_into_white() -> None:
    assert tint("#e0302b", 0.0) == "#ffffff"
    assert tint("#e0302b", 1.0) == "#e0302b"
    assert tint("#000000", 0.5) == "#808080"


# The workbook, the HTML and the charts agree.


def workbook_text_colors(tmp_path: Path) -> dict[str, str]:
    """Fill colour -> font colour of the Patches sheet's state and severity cells."""
    rows = [
        (f"KB{i}", state, level, "Security", 0, "")
        for i, (state, level) in enumerate(zip(STATE_COLORS, LEVELS, strict=True))
    ]
    frame = patches_from_rows({"i-00000001": rows})
    book = openpyxl.load_workbook(to_excel(frame, tmp_path / "book.xlsx"))
    found = {}
    for area in book["Patches"].conditional_formatting:
        for rule in area.rules:
            if rule.type == "cellIs":
                fill, font = rule.dxf.fill.bgColor.rgb, rule.dxf.font.color.rgb
                found["#" + fill[2:].lower()] = "#" + font[2:].lower()
    return found


def html_text_colors() -> dict[str, str]:
    """Fill colour -> text colour of style_states' state and severity cells."""
    frame = pd.DataFrame({"state": [*STATE_COLORS], "severity_level": LEVELS})
    html = style_states(frame).to_html()
    pairs = re.findall(r"background-color: (#[0-9a-f]{6});\s+color: (#[0-9a-f]{6})", html)
    return dict(pairs)


def chart_text_color(background: str) -> str:
    """The colour of a heatmap count drawn on a cell of ``background``."""
    frame = patches_from_rows(
        {"i-00000001": [(f"KB{i}", "Missing", "Critical", "Security", 0, "") for i in range(2)]}
    )
    ax = plots.severity_state_heatmap(frame, palette={"MISSING": background})
    (label,) = ax.texts
    assert label.get_text() == "2"  # the largest count: its cell is the full colour
    image = ax.images[0].get_array()
    row, column = round(label.get_position()[1]), round(label.get_position()[0])
    assert to_hex(image[row, column]) == background
    return to_hex(label.get_color())


def test_workbook_html_and_charts_put_the_same_text_on_each_colour(tmp_path: Path) -> None:
    workbook = workbook_text_colors(tmp_path)
    html = html_text_colors()
    state_and_level_colors = {*STATE_COLORS.values(), *SEVERITY_COLORS.values()}
    assert set(workbook) == set(html) == state_and_level_colors
    for background in sorted(state_and_level_colors):
        chart = chart_text_color(background)
        assert workbook[background] == html[background] == chart == text_color(background)
