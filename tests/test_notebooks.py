"""The notebooks, run by a real Jupyter kernel, and how patchframe displays in them.

Every ``notebooks/*.ipynb`` (whoever adds one) is checked as stored: no outputs,
a Markdown title, a first code cell tagged ``parameters``, assert cells for the
sample fleet, the public API only. Then it runs top to bottom in a fresh
``python3`` kernel, from a temporary working folder, within a time budget; its
cell count and run time are printed. The rich display tests check the HTML that
Jupyter shows for a Fleet and for ``style_states`` tables.
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from IPython.core.formatters import DisplayFormatter
from IPython.core.inputtransformer2 import TransformerManager
from nbclient import NotebookClient

import patchframe as pf
from patchframe._html import style_states
from patchframe._palette import COMPLIANCE_COLORS, SEVERITY_COLORS, STATE_COLORS, UNKNOWN_COLOR
from patchframe.exceptions import ValidationError

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
REQUIRED = {"01-quickstart", "02-fleet-overview", "03-cve-exposure", "04-report"}
CELL_TIMEOUT = 60  # seconds, per cell
BUDGET = 60.0  # seconds, per notebook, kernel start included; they take a few seconds
# Without ipywidgets, tqdm.auto draws a text bar instead of a widget, and says so.
TOLERATED_WARNINGS = ("TqdmWarning: IProgress not found",)


def by_name(path: Path) -> str:
    return path.stem


def code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


@pytest.fixture(params=NOTEBOOKS, ids=by_name)
def notebook(request: pytest.FixtureRequest) -> tuple[str, nbformat.NotebookNode]:
    path: Path = request.param
    return path.stem, nbformat.read(path, as_version=4)


# The notebooks as stored.


def test_the_four_notebooks_are_there() -> None:
    assert {by_name(p) for p in NOTEBOOKS} >= REQUIRED


def test_stored_without_outputs(notebook: tuple[str, nbformat.NotebookNode]) -> None:
    name, nb = notebook
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    dirty = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, (
        f"{name}: cells {dirty} hold outputs or execution counts; clear them before committing "
        "(JupyterLab: Edit > Clear Outputs of All Cells, then save)"
    )
    assert "widgets" not in nb.metadata, f"{name}: stored widget state is an output too"


def test_opens_with_a_title_and_a_parameters_cell(
    notebook: tuple[str, nbformat.NotebookNode],
) -> None:
    name, nb = notebook
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), (
        f"{name}: the first cell is a Markdown title saying what the notebook answers"
    )
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert tagged and tagged[0] is code_cells(nb)[0] and len(tagged) == 1, (
        f"{name}: the first code cell, and only it, is tagged 'parameters'"
    )
    assert re.search(r"^SAMPLE\s*=\s*True\b", tagged[0].source, re.MULTILINE), (
        f"{name}: runs on the sample fleet by default (SAMPLE = True)"
    )


def test_checks_the_sample_figures(notebook: tuple[str, nbformat.NotebookNode]) -> None:
    name, nb = notebook
    assert any(
        "if SAMPLE" in cell.source and "assert" in cell.source for cell in code_cells(nb)
    ), f"{name}: no assert cell checks the sample fleet's figures under 'if SAMPLE:'"


def private_uses(source: str) -> list[str]:
    """The names outside patchframe's public API that a cell uses.

    Public means: in ``patchframe.__all__`` (``pf.load_fleet``, ``from patchframe import
    Fleet``), or in the ``__all__`` of a module whose dotted path has no ``_`` part
    (``pf.summary.top_missing``, ``from patchframe.history import diff``).
    """

    def private_path(name: str) -> bool:
        return any(part.startswith("_") for part in name.split("."))

    def exported(module: types.ModuleType, name: str) -> bool:
        return name in getattr(module, "__all__", ())

    tree = ast.parse(TransformerManager().transform_cell(source))  # %magics become calls
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [
                a.name
                for a in node.names
                if a.name.startswith("patchframe.") and private_path(a.name)
            ]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("patchframe"):
            module_name = node.module or ""
            if private_path(module_name):
                found.append(module_name)
                continue
            module = importlib.import_module(module_name)
            found += [
                f"{module_name}.{a.name}" for a in node.names if not exported(module, a.name)
            ]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "pf" and not exported(pf, node.attr):
                found.append(f"pf.{node.attr}")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute):
            inner = node.value
            if isinstance(inner.value, ast.Name) and inner.value.id == "pf":
                owner = getattr(pf, inner.attr, None)
                if isinstance(owner, types.ModuleType) and not exported(owner, node.attr):
                    found.append(f"pf.{inner.attr}.{node.attr}")
    return found


def test_uses_only_the_public_api(notebook: tuple[str, nbformat.NotebookNode]) -> None:
    name, nb = notebook
    private = {use for cell in code_cells(nb) for use in private_uses(cell.source)}
    assert not private, f"{name} uses names outside patchframe's public API: {sorted(private)}"


def test_the_public_api_check_catches_private_names() -> None:
    cell = """
import patchframe as pf
import patchframe.summary
import patchframe._schema as schema
from patchframe._html import fleet_html
from patchframe import Fleet, _fleet
from patchframe.summary import top_missing, OPEN_STATES
%matplotlib inline
pf.load_fleet, pf.summary.top_missing, pf.summary._codes, pf._schema, pf.plots.top_cves
"""
    assert sorted(private_uses(cell)) == [
        "patchframe._fleet",
        "patchframe._html",
        "patchframe._schema",
        "patchframe.summary.OPEN_STATES",
        "pf._schema",
        "pf.summary._codes",
    ]


# The notebooks, run.


def warnings_in(nb: nbformat.NotebookNode) -> list[str]:
    lines = [
        line
        for cell in code_cells(nb)
        for out in cell.outputs
        if out.output_type == "stream" and out.name == "stderr"
        for line in out.text.splitlines()
        if re.search(r"\w+Warning: ", line)
    ]
    return [line for line in lines if not any(t in line for t in TOLERATED_WARNINGS)]


def test_runs_top_to_bottom_in_a_fresh_kernel(
    notebook: tuple[str, nbformat.NotebookNode],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name, nb = notebook
    # The kernel inherits the test environment (no AWS configuration: conftest.py),
    # but draws figures inline as in JupyterLab, not with the tests' Agg backend, and
    # its temporary folders (tempfile) are inside tmp_path too.
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env["TMPDIR"] = str(tmp_path)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(tmp_path)}},  # the kernel's working folder
    )
    start = time.perf_counter()
    client.execute(env=env)  # raises CellExecutionError, with the traceback, on any error
    seconds = time.perf_counter() - start

    with capsys.disabled():
        print(
            f"\n{name}: {len(nb.cells)} cells ({len(code_cells(nb))} code), {seconds:.1f} s",
            end="",
        )
    assert seconds < BUDGET, f"{name} took {seconds:.1f} s; the budget is {BUDGET:.0f} s"
    assert not warnings_in(nb), f"{name} shows warnings: {warnings_in(nb)}"
    for cell in code_cells(nb):
        for out in cell.outputs:
            shown = out.get("data", {})
            if str(shown.get("text/plain", "")).startswith("<Fleet:"):
                assert "patchframe-fleet" in shown.get("text/html", ""), "a Fleet shows as HTML"


# Rich display: a Fleet at a glance.


@pytest.fixture(scope="module")
def fleet() -> pf.Fleet:
    return pf.load_fleet(client=pf.sample_client(), progress=False)


def figures_in(page: str) -> dict[str, str]:
    """The figures of a Fleet's HTML: label -> the number shown above it."""
    pairs = re.findall(r'<div style="font-size:1.5em[^"]*">([\d,]+)</div><div[^>]*>([^<]+)<', page)
    return {label: value for value, label in pairs}


def test_jupyter_shows_a_fleet_as_html(fleet: pf.Fleet) -> None:
    data, _ = DisplayFormatter().format(fleet)
    assert "patchframe-fleet" in data["text/html"]
    assert data["text/plain"] == repr(fleet)


def test_fleet_html_shows_the_figures(fleet: pf.Fleet) -> None:
    page = fleet._repr_html_()
    assert figures_in(page) == {
        "nodes": "13",
        "patches": "2,020",
        "non-compliant nodes": "11",
        "nodes not loaded": "0",
        "errors": "0",
    }
    assert "1 account, 1 region" in page
    non_compliant = re.search(r"NON_COMPLIANT</td>((?:<td>.*?</td>)+?)</tr>", page)
    assert non_compliant is not None
    assert re.findall(r"<td>(?:<b>)?([\d,]+)", non_compliant.group(1)) == ["7", "4", "11"]
    assert "What failed" not in page


def test_fleet_html_shows_the_state_and_compliance_colours(fleet: pf.Fleet) -> None:
    page = fleet._repr_html_()
    counts = fleet.patches["state"].value_counts()
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
    assert "<td>DescribeInstanceInformation</td><td>InvalidInstanceId</td><td>1</td>" in page
    assert "&lt;b&gt;Odd&lt;/b&gt;" in page and "<b>Odd</b>" not in page
    assert "no nodes" in page and "flex:" not in page  # no states, no bar


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
    assert "row_heading" not in html  # row numbers are hidden
    assert "<caption>Mixed &lt;things&gt;</caption>" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "a &amp; b" in html and "<b>" not in html
    assert mixed["missing"].tolist() == [2020, 0, 1, 2]  # the frame is untouched


def test_style_states_colours_the_state_by_severity_table(fleet: pf.Fleet) -> None:
    table = fleet.patches.pf.state_by_severity()
    styles = cell_styles(style_states(table).to_html())
    rows = table.index.tolist()
    assert fill(STATE_COLORS["FAILED"]) in styles[f"level0_row{rows.index('FAILED')}"]
    assert f"level0_row{rows.index('total')}" not in styles  # not a state
    for i, column in enumerate(table.columns):
        if column in SEVERITY_COLORS:
            assert fill(SEVERITY_COLORS[column]) in styles[f"level0_col{i}"]
    assert f"level0_col{len(table.columns) - 1}" not in styles  # total


def test_style_states_colours_the_nodes_frame(fleet: pf.Fleet) -> None:
    nodes = fleet.nodes
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
