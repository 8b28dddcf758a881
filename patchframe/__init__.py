"""patchframe: AWS Systems Manager patch compliance as typed pandas DataFrames.

Load one node with :func:`load_instance_patches` or a whole fleet with
:func:`load_fleet`; try it with no AWS account on the bundled sample fleet with
:func:`sample_client`. Filters, summaries and plots live in the modules
:mod:`patchframe.filters`, :mod:`patchframe.summary` and :mod:`patchframe.plots`,
and on every patches frame as the ``.pf`` accessor.

``import patchframe`` loads only the data contract, the exceptions and the
accessor; the AWS loaders, plots, export, history and the sandbox load on first
use (PEP 562), so a notebook that only reads a Parquet file never imports
matplotlib, xlsxwriter or the emulator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import accessor as accessor  # registers the DataFrame accessor ``.pf``
from ._fleet import Fleet
from ._lazy import lazy_names
from ._schema import (
    COMPLIANT_STATES,
    NON_COMPLIANT_STATES,
    OPEN_STATES,
    PATCH_COLUMNS,
    SEVERITY_LEVELS,
    STATES,
    UnknownStateWarning,
    concat_patches,
    empty_patches,
)
from ._version import VERSION as __version__
from .exceptions import (
    AWSRequestError,
    ColumnsError,
    NodeNotFoundError,
    OrganizationError,
    PatchframeError,
    StoreError,
    ValidationError,
)

if TYPE_CHECKING:
    from . import export, filters, history, plots, sandbox, summary
    from ._html import style_states
    from ._release_dates import with_release_dates
    from .aws import (
        Organization,
        load_fleet,
        load_instance_patches,
        load_patch_catalog,
        make_client,
        read_resource_data_sync,
    )
    from .export import read_parquet, to_compliance_csv, to_excel, to_parquet
    from .history import (
        FleetDiff,
        Snapshot,
        diff,
        list_snapshots,
        load_snapshot,
        plot_trend,
        save_snapshot,
        trend,
    )
    from .sandbox import (
        Emulator,
        sample_client,
        sample_fleet,
        synthetic_fleet,
        synthetic_history,
        synthetic_organization,
    )

# Loaded on first use: each name, and the module that holds it.
_LAZY: dict[str, str] = {
    **dict.fromkeys(["export", "filters", "history", "plots", "sandbox", "summary"], ""),
    "style_states": "._html",
    **dict.fromkeys(
        [
            "Organization",
            "load_fleet",
            "load_instance_patches",
            "load_patch_catalog",
            "make_client",
            "read_resource_data_sync",
        ],
        ".aws",
    ),
    "with_release_dates": "._release_dates",
    **dict.fromkeys(["read_parquet", "to_compliance_csv", "to_excel", "to_parquet"], ".export"),
    **dict.fromkeys(
        [
            "FleetDiff",
            "Snapshot",
            "diff",
            "list_snapshots",
            "load_snapshot",
            "plot_trend",
            "save_snapshot",
            "trend",
        ],
        ".history",
    ),
    **dict.fromkeys(
        [
            "Emulator",
            "sample_client",
            "sample_fleet",
            "synthetic_fleet",
            "synthetic_history",
            "synthetic_organization",
        ],
        ".sandbox",
    ),
}

__all__ = [
    "COMPLIANT_STATES",
    "NON_COMPLIANT_STATES",
    "OPEN_STATES",
    "PATCH_COLUMNS",
    "SEVERITY_LEVELS",
    "STATES",
    "AWSRequestError",
    "ColumnsError",
    "Emulator",
    "Fleet",
    "FleetDiff",
    "NodeNotFoundError",
    "Organization",
    "OrganizationError",
    "PatchframeError",
    "Snapshot",
    "StoreError",
    "UnknownStateWarning",
    "ValidationError",
    "__version__",
    "concat_patches",
    "diff",
    "empty_patches",
    "export",
    "filters",
    "history",
    "list_snapshots",
    "load_fleet",
    "load_instance_patches",
    "load_patch_catalog",
    "load_snapshot",
    "make_client",
    "plot_trend",
    "plots",
    "read_parquet",
    "read_resource_data_sync",
    "sample_client",
    "sample_fleet",
    "sandbox",
    "save_snapshot",
    "style_states",
    "summary",
    "synthetic_fleet",
    "synthetic_history",
    "synthetic_organization",
    "to_compliance_csv",
    "to_excel",
    "to_parquet",
    "trend",
    "with_release_dates",
]


__getattr__, __dir__ = lazy_names(__name__, _LAZY, __all__)
