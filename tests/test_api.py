"""The public API: one curated, sorted ``__all__``, every name importable."""

from __future__ import annotations

import subprocess
import sys

import pytest

import patchframe as pf

# Every name a user could import from patchframe before the package grew subpackages.
PUBLIC_NAMES = {
    "COMPLIANT_STATES", "NON_COMPLIANT_STATES", "PATCH_COLUMNS", "SEVERITY_LEVELS", "STATES",
    "AWSRequestError", "ColumnsError", "Emulator", "Fleet", "FleetDiff", "NodeNotFoundError",
    "PatchframeError", "Snapshot", "StoreError", "UnknownStateWarning", "ValidationError",
    "__version__", "concat_patches", "diff", "empty_patches", "filters", "history",
    "list_snapshots", "load_fleet", "load_instance_patches", "load_snapshot", "plot_trend",
    "plots", "read_parquet", "sample_client", "sample_fleet", "save_snapshot", "style_states",
    "summary", "synthetic_fleet", "synthetic_history", "to_compliance_csv", "to_excel",
    "to_parquet", "trend",
}  # fmt: skip


def test_every_public_name_stays_importable() -> None:
    assert set(pf.__all__) >= PUBLIC_NAMES
    namespace: dict[str, object] = {}
    exec(f"from patchframe import {', '.join(sorted(PUBLIC_NAMES))}", namespace)
    assert set(namespace) >= PUBLIC_NAMES


def test_all_is_sorted_and_complete() -> None:
    def kind(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert pf.__all__ == sorted(pf.__all__, key=kind)
    assert len(set(pf.__all__)) == len(pf.__all__)
    for name in pf.__all__:
        assert hasattr(pf, name), name


def test_every_exception_is_a_patchframe_error() -> None:
    for name in (
        "AWSRequestError",
        "ColumnsError",
        "NodeNotFoundError",
        "StoreError",
        "ValidationError",
    ):
        assert issubclass(getattr(pf, name), pf.PatchframeError)
    assert issubclass(pf.ValidationError, ValueError)


def test_public_functions_have_examples() -> None:
    for name in pf.__all__:
        obj = getattr(pf, name)
        if callable(obj) and not isinstance(obj, type):
            assert obj.__doc__ and ">>>" in obj.__doc__, name


def test_import_is_light() -> None:
    """``import patchframe`` loads neither charts, Excel, HTTP serving nor the sandbox."""
    code = (
        "import sys, patchframe\n"
        "heavy = ('matplotlib', 'xlsxwriter', 'http.server', 'boto3', 'patchframe.sandbox',"
        " 'patchframe.plots', 'patchframe.export', 'patchframe.history', 'patchframe.aws')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_lazy_names_load_on_first_use_and_are_listed() -> None:
    code = (
        "import sys, patchframe as pf\n"
        "assert set(pf.__all__) <= set(dir(pf))\n"
        "pf.to_excel\n"
        "print('xlsxwriter' in sys.modules, 'matplotlib' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "False"]


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'load_fleets'"):
        pf.load_fleets  # noqa: B018


def test_every_analysis_function_documents_its_input_errors() -> None:
    for module in (pf.filters, pf.summary, pf.plots):
        for name in module.__all__:
            obj = getattr(module, name)
            if callable(obj) and not isinstance(obj, type):
                raises = (obj.__doc__ or "").partition("Raises\n")[2].partition("Examples")[0]
                assert "ValidationError" in raises, f"{module.__name__}.{name}"


def test_a_lazy_name_is_cached_after_its_first_use() -> None:
    code = (
        "import patchframe as pf\n"
        "assert 'to_parquet' not in vars(pf)\n"
        "pf.to_parquet\n"
        "print('to_parquet' in vars(pf))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "True"
