"""The notebooks, run by a real Jupyter kernel, and how patchframe displays in them.

Every ``notebooks/*.ipynb`` (whoever adds one) is checked as stored: no outputs,
a Markdown title, a first code cell tagged ``parameters``, assert cells for the
sample fleet, the public API only. Then it runs top to bottom in a fresh
``python3`` kernel, from a temporary working folder, within a time budget; its
cell count and run time are printed. How patchframe displays in Jupyter (a Fleet's
HTML, ``style_states`` tables) is tested in ``test_html.py``.
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import time
import types
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from nbclient import NotebookClient

import patchframe as pf

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
