"""HTML for Jupyter: a Fleet at a glance, and ``style_states`` tables in the charts' colours."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
from IPython.core.formatters import DisplayFormatter

import patchframe as pf
from patchframe._html import style_states
from patchframe._palette import COMPLIANCE_COLORS, SEVERITY_COLORS, STATE_COLORS, UNKNOWN_COLOR
from patchframe._schema import AccountRow, build_accounts
from patchframe.exceptions import ValidationError

ACCOUNT = "123456789012"  # the sample's

# Rich display: a Fleet at a glance.


def figures_in(page: str) -> dict[str, str]:
    """The figures of a Fleet's HTML: label -> the number shown above it."""
    pairs = re.findall(r'<div style="font-size:1.5em[^"]*">([\d,]+)</div><div[^>]*>([^<]+)<', page)
    return {label: value for value, label in pairs}


def test_jupyter_shows_a_fleet_as_html(sample_fleet_frames: pf.Fleet) -> None:
    data, _ = DisplayFormatter().format(sample_fleet_frames)
    assert "patchframe-fleet" in data["text/html"]
    assert data["text/plain"] == repr(sample_fleet_frames)


def test_fleet_html_shows_the_figures(sample_fleet_frames: pf.Fleet) -> None:
    page = sample_fleet_frames._repr_html_()
    assert figures_in(page) == {
        "nodes": "13",
        "patches": "2,020",
        "non-compliant nodes": "11",
        "stale nodes (7+ days)": "13",  # loaded today, last scanned in 2024
        "unreachable nodes": "1",
        "nodes not loaded": "0",
        "errors": "0",
    }
    assert "1 account, 1 region" in page
    non_compliant = re.search(r"NON_COMPLIANT</td>((?:<td>.*?</td>)+?)</tr>", page)
    assert non_compliant is not None
    assert re.findall(r"<td>(?:<b>)?([\d,]+)", non_compliant.group(1)) == ["7", "4", "11"]
    assert "What failed" not in page


def test_fleet_html_counts_stale_nodes_to_the_load_time_beside_compliance(
    sample_fleet_frames: pf.Fleet,
) -> None:
    page = sample_fleet_frames.as_of("2024-06-14T08:00Z")._repr_html_()
    figures = figures_in(page)
    assert figures["stale nodes (7+ days)"] == "2" and figures["unreachable nodes"] == "1"
    assert figures["non-compliant nodes"] == "11"  # AWS's verdict, as it is
    saved_before = pf.Fleet(
        sample_fleet_frames.patches,
        sample_fleet_frames.nodes.drop(columns=["scan_age", "reachable"]),
        sample_fleet_frames.errors,
    )
    assert not {"stale nodes (7+ days)", "unreachable nodes"} & set(
        figures_in(saved_before._repr_html_())
    )


def test_fleet_html_shows_the_state_and_compliance_colours(sample_fleet_frames: pf.Fleet) -> None:
    page = sample_fleet_frames._repr_html_()
    counts = sample_fleet_frames.patches["state"].value_counts()
    for state, count in counts.items():
        colour = STATE_COLORS[str(state)]
        # A bar segment and a table swatch, in the palette's colour.
        assert f'title="{state}: {count:,}" style="flex:{count} 1 0;background:{colour}"' in page
        assert f'background:{colour}"></span>{state}</td><td>{count:,}</td>' in page
    for status in ("COMPLIANT", "NON_COMPLIANT", "NOT_SCANNED"):
        assert f'background:{COMPLIANCE_COLORS[status]}"></span>{status}</td>' in page
    assert f'color:{COMPLIANCE_COLORS["NON_COMPLIANT"]};">11</div>' in page  # the alarm


def test_fleet_html_shows_what_failed_escaped() -> None:
    probe = pf.load_fleet(["i-0123456789abcdef0"], client=pf.sample_client(), progress=False)
    errors = pd.concat([probe.errors, probe.errors.assign(error_code="<b>Odd</b>")])
    page = pf.Fleet(probe.patches, probe.nodes, errors)._repr_html_()
    assert figures_in(page)["errors"] == "2"
    left = '<td style="text-align:left">'
    assert f"{left}DescribeInstanceInformation</td>{left}InvalidInstanceId</td><td>1</td>" in page
    assert "&lt;b&gt;Odd&lt;/b&gt;" in page and "<b>Odd</b>" not in page
    assert "no nodes" in page and "flex:" not in page  # no states, no bar


def named_accounts(
    fleet: pf.Fleet, *extra: AccountRow, before: tuple[AccountRow, ...] = ()
) -> pf.Fleet:
    """The sample as one account of a load across an organization, after ``before`` and
    beside ``extra``."""
    prod = AccountRow(ACCOUNT, "prod <payments>", "ACTIVE", ("eu-west-1",), None)
    rows = [*before, prod, *extra]
    return dataclasses.replace(fleet, accounts=build_accounts(rows, fleet.nodes))


def test_fleet_html_lists_the_accounts_by_name_those_that_failed_first(
    sample_fleet_frames: pf.Fleet,
) -> None:
    failed = AccountRow("444455556666", "dev", "SUSPENDED", (), "AccessDenied")
    page = named_accounts(sample_fleet_frames, failed)._repr_html_()
    assert "<b>Accounts</b>" in page and "2 accounts, 1 region" in page
    left = '<td style="text-align:left">'
    no = f'<span style="color:{COMPLIANCE_COLORS["NON_COMPLIANT"]}">no</span>'
    dev = (
        f"{left}dev</td>{left}444455556666</td>{left}SUSPENDED</td>{left}{no}</td>"
        f"<td></td><td></td>{left}AccessDenied</td>"
    )
    prod = (
        f"{left}prod &lt;payments&gt;</td>{left}{ACCOUNT}</td>{left}ACTIVE</td>{left}yes</td>"
        f"<td>13</td><td>11</td>{left}</td>"
    )
    assert dev in page and prod in page and page.index(dev) < page.index(prod)


def test_fleet_html_lists_the_most_non_compliant_accounts_next(
    sample_fleet_frames: pf.Fleet,
) -> None:
    quiet = AccountRow("111122223333", "quiet", "ACTIVE", ("eu-west-1",), None)  # no nodes
    page = named_accounts(sample_fleet_frames, before=(quiet,))._repr_html_()
    left = '<td style="text-align:left">'
    quiet_row = f"{left}quiet</td>{left}111122223333</td>{left}ACTIVE</td>{left}yes</td>"
    quiet_row += f"<td>0</td><td>0</td>{left}</td>"
    prod_row = f"{left}prod &lt;payments&gt;</td>{left}{ACCOUNT}</td>"
    assert quiet_row in page and prod_row in page
    assert page.index(prod_row) < page.index(quiet_row)  # 11 non-compliant nodes before 0


def test_fleet_html_lists_accounts_only_when_it_tells_more_than_a_count(
    sample_fleet_frames: pf.Fleet,
) -> None:
    assert "<b>Accounts</b>" not in named_accounts(sample_fleet_frames)._repr_html_()
    alone = dataclasses.replace(
        sample_fleet_frames,
        accounts=build_accounts(
            [AccountRow(ACCOUNT, "prod", "ACTIVE", (), "ExpiredToken")], sample_fleet_frames.nodes
        ),
    )
    assert "<b>Accounts</b>" in alone._repr_html_()
    many = [AccountRow(f"{i:012d}", f"team-{i}", "ACTIVE", (), None) for i in range(1, 25)]
    page = named_accounts(sample_fleet_frames, *many)._repr_html_()
    assert page.count("team-") == 19 and "and 5 more accounts" in page  # 20 rows shown


# Rich display: tables in the charts' colours.


def cell_styles(html: str) -> dict[str, str]:
    """CSS per cell of a Styler's HTML: ``row1_col2`` (body), ``level0_col2`` (column
    header), ``level0_row1`` (row label)."""
    styles: dict[str, str] = {}
    for selectors, props in re.findall(r"([^{}]+)\{([^}]*)\}", html.split("</style>")[0]):
        for selector in selectors.split(","):
            where = re.search(r"_((?:row|level)\d+_(?:row|col)\d+)$", selector.strip())
            if where:
                styles[where.group(1)] = styles.get(where.group(1), "") + " ".join(props.split())
    return styles


def fill(colour: str) -> str:
    return f"background-color: {colour};"


@pytest.fixture
def mixed() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "state": pd.Categorical(["MISSING", "InstalledOther", "BRAND_NEW", None]),
            "severity_level": ["Critical", "Low", None, "HIGH"],
            "missing": [2020, 0, 1, 2],
            "installed": [5, 0, 2, 1],
            "compliant": [False, True, True, False],
            "title": ["<b>bold</b>", "a & b", None, ""],
            "seen": pd.Series([pd.Timestamp("2024-06-13 12:58:56.393", tz="UTC"), *[pd.NaT] * 3]),
        }
    )


def test_style_states_colours_values_like_the_charts(mixed: pd.DataFrame) -> None:
    styles = cell_styles(style_states(mixed).to_html())
    assert fill(STATE_COLORS["MISSING"]) in styles["row0_col0"]
    assert fill(STATE_COLORS["INSTALLED_OTHER"]) in styles["row1_col0"]  # CamelCase as sent
    assert fill(UNKNOWN_COLOR) in styles["row2_col0"]  # a state nobody knew yet
    assert "row3_col0" not in styles  # NA
    assert fill(SEVERITY_COLORS["Critical"]) in styles["row0_col1"]
    assert fill(SEVERITY_COLORS["High"]) in styles["row3_col1"]
    assert fill(COMPLIANCE_COLORS["NON_COMPLIANT"]) in styles["row0_col4"]
    assert fill(COMPLIANCE_COLORS["COMPLIANT"]) in styles["row1_col4"]
    assert "color: #ffffff" in styles["row0_col1"] and "color: #000000" in styles["row1_col1"]


def test_style_states_colours_counts_and_headers(mixed: pd.DataFrame) -> None:
    styles = cell_styles(style_states(mixed).to_html())
    assert fill(STATE_COLORS["MISSING"]) in styles["level0_col2"]  # the header "missing"
    assert fill(STATE_COLORS["INSTALLED"]) in styles["level0_col3"]
    assert fill(STATE_COLORS["MISSING"]) in styles["row0_col2"]  # non-compliant, non-zero
    assert styles["row1_col2"].replace(" ", "") == "opacity:0.45;"  # zero: muted
    assert "row0_col3" not in styles  # installed counts call for nothing
    assert "level0_col0" not in styles and "level0_col6" not in styles


def test_style_states_formats_counts_times_and_na(mixed: pd.DataFrame) -> None:
    html = style_states(mixed, caption="Mixed <things>").to_html()
    assert ">2,020<" in html
    assert ">2024-06-13 12:58 UTC<" in html
    assert "NaT" not in html and "nan" not in html and "None" not in html
    assert 'class="row_heading' not in html  # row numbers are hidden
    assert "<caption>Mixed &lt;things&gt;</caption>" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "a &amp; b" in html and "<b>" not in html
    assert mixed["missing"].tolist() == [2020, 0, 1, 2]  # the frame is untouched


def test_style_states_colours_the_state_by_severity_table(sample_fleet_frames: pf.Fleet) -> None:
    table = sample_fleet_frames.patches.pf.state_by_severity()
    styles = cell_styles(style_states(table).to_html())
    rows = table.index.tolist()
    assert fill(STATE_COLORS["FAILED"]) in styles[f"level0_row{rows.index('FAILED')}"]
    assert f"level0_row{rows.index('total')}" not in styles  # not a state
    for i, column in enumerate(table.columns):
        if column in SEVERITY_COLORS:
            assert fill(SEVERITY_COLORS[column]) in styles[f"level0_col{i}"]
    assert f"level0_col{len(table.columns) - 1}" not in styles  # total


def test_style_states_colours_the_nodes_frame(sample_fleet_frames: pf.Fleet) -> None:
    nodes = sample_fleet_frames.nodes
    styles = cell_styles(style_states(nodes).to_html())
    column = nodes.columns.get_loc("compliance")
    for row, status in enumerate(nodes["compliance"]):
        assert fill(COMPLIANCE_COLORS[status]) in styles[f"row{row}_col{column}"]


def test_style_states_refuses_what_it_cannot_show() -> None:
    with pytest.raises(ValidationError, match="expected a DataFrame"):
        style_states(pd.Series([1, 2]))  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="reset_index"):
        style_states(pd.DataFrame({"state": ["MISSING", "FAILED"]}, index=[0, 0]))


def test_jinja2_is_imported_by_the_first_styled_table_only() -> None:
    script = textwrap.dedent(
        """
        import sys
        import patchframe as pf
        from patchframe._html import style_states
        fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
        fleet._repr_html_()
        assert "jinja2" not in sys.modules, "imported with patchframe or by the Fleet"
        style_states(fleet.nodes).to_html()
        assert "jinja2" in sys.modules
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)


# Fitting a notebook.


def table_rules(html: str) -> dict[str, str]:
    """A Styler's CSS rules below its table id: selector -> properties."""
    rules: dict[str, str] = {}
    for selectors, props in re.findall(r"([^{}]+)\{([^}]*)\}", html.split("</style>")[0]):
        for selector in selectors.split(","):
            inner = re.sub(r"^\s*(<style[^>]*>)?\s*#T_\w+ ?", "", selector).strip()
            rules[inner] = rules.get(inner, "") + " ".join(props.split())
    return rules


def column_css(html: str, frame: pd.DataFrame, column: str, tail: str = "") -> str:
    return table_rules(html).get(f"td.col{frame.columns.get_loc(column)}{tail}", "")


def test_ids_kb_ids_and_times_stay_on_one_line(sample_fleet_frames: pf.Fleet) -> None:
    rows = sample_fleet_frames.patches.head(5)
    rules = table_rules(style_states(rows).to_html())
    # Every value: ids, KB ids and times (which hold spaces) among them.
    assert (
        "white-space: nowrap" in rules["td"] and "white-space: nowrap" in rules["th.row_heading"]
    )
    for column in ("instance_id", "kb_id", "account_id", "installed_time"):
        assert "white-space" not in column_css(style_states(rows).to_html(), rows, column)


def test_long_headers_may_break_after_underscores(sample_patches: pd.DataFrame) -> None:
    table = sample_patches.pf.node_compliance()
    html = style_states(table).to_html()
    assert ">installed_<wbr>pending_<wbr>reboot</th>" in html
    assert ">worst_<wbr>missing_<wbr>severity</th>" in html
    assert "white-space: normal" in table_rules(html)["th.col_heading"]
    assert "<b>" not in style_states(pd.DataFrame({"<b>_x": [1]})).to_html()  # escaped


def test_titles_are_capped_with_the_whole_text_on_hover(sample_patches: pd.DataFrame) -> None:
    rows = sample_patches[sample_patches["title"].str.len() > 100].head(3)
    rows = pd.concat([rows, pd.DataFrame({"title": ['<i>say "hi"</i>']})], ignore_index=True)
    html = style_states(rows).to_html()
    cap = column_css(html, rows, "title", " > span")
    assert "text-overflow: ellipsis" in cap and "max-width: 28em" in cap
    assert "white-space: nowrap" in cap and "overflow: hidden" in cap
    title = rows["title"].iloc[0]
    assert f'<span title="{title}">{title}</span>' in html
    assert '<span title="&lt;i&gt;say &#34;hi&#34;&lt;/i&gt;">' in html


@pytest.mark.parametrize("summary", ["node_compliance", "state_by_severity", "top_missing"])
def test_wide_tables_scroll_in_their_own_box(sample_patches: pd.DataFrame, summary: str) -> None:
    html = style_states(getattr(sample_patches.pf, summary)()).to_html()
    own = table_rules(html)[""]  # the table itself
    assert "overflow-x: auto" in own and "display: block" in own and "max-width: 100%" in own


def test_fleet_html_scrolls_rather_than_being_cut(sample_fleet_frames: pf.Fleet) -> None:
    page = sample_fleet_frames._repr_html_()
    assert page.startswith('<div class="patchframe-fleet" style="max-width:100%;overflow-x:auto">')


def test_never_scanned_nodes_read_as_such(sample_fleet_frames: pf.Fleet) -> None:
    page = sample_fleet_frames._repr_html_()
    assert "1 node never scanned (NOT_SCANNED)" in page and "counts empty, not zero" in page
    nodes = sample_fleet_frames.nodes
    html = style_states(nodes, caption="Nodes").to_html()
    caption = re.search(r"<caption>(.*?)</caption>", html, re.S)
    assert caption is not None and caption.group(1).startswith("Nodes<div")
    assert "Counts are empty for a node never scanned (NOT_SCANNED)" in caption.group(1)
    assert "&lt;NA&gt;" not in html and "<NA>" not in html
    scanned = nodes[nodes["compliance"] != "NOT_SCANNED"]
    assert "<caption>" not in style_states(scanned).to_html()
    loaded = pf.load_fleet(["i-0e8c6a4f2d0b13579"], client=pf.sample_client(), progress=False)
    assert "never scanned" not in loaded._repr_html_()
