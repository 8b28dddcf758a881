"""patchframe: AWS Systems Manager patch compliance as typed pandas DataFrames.

Load one node with :func:`load_instance_patches` or a whole fleet with
:func:`load_fleet`; try it with no AWS account on the bundled sample fleet with
:func:`sample_client`. Filters, summaries and plots live in the modules
:mod:`patchframe.filters`, :mod:`patchframe.summary` and :mod:`patchframe.plots`,
and on every patches frame as the ``.pf`` accessor.
"""

from __future__ import annotations

from . import accessor as accessor  # registers the DataFrame accessor ``.pf``
from . import filters, history, plots, summary
from ._fanout import load_fleet
from ._fleet import Fleet
from ._html import style_states
from ._load import load_instance_patches
from ._schema import (
    COMPLIANT_STATES,
    NON_COMPLIANT_STATES,
    PATCH_COLUMNS,
    SEVERITY_LEVELS,
    STATES,
    UnknownStateWarning,
    concat_patches,
    empty_patches,
)
from ._version import VERSION as __version__
from .emulator import Emulator, sample_client
from .exceptions import (
    AWSRequestError,
    ColumnsError,
    NodeNotFoundError,
    PatchframeError,
    StoreError,
    ValidationError,
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
from .sample import sample_fleet, synthetic_fleet, synthetic_history

__all__ = [
    "COMPLIANT_STATES",
    "NON_COMPLIANT_STATES",
    "PATCH_COLUMNS",
    "SEVERITY_LEVELS",
    "STATES",
    "AWSRequestError",
    "ColumnsError",
    "Emulator",
    "Fleet",
    "FleetDiff",
    "NodeNotFoundError",
    "PatchframeError",
    "Snapshot",
    "StoreError",
    "UnknownStateWarning",
    "ValidationError",
    "__version__",
    "concat_patches",
    "diff",
    "empty_patches",
    "filters",
    "history",
    "list_snapshots",
    "load_fleet",
    "load_instance_patches",
    "load_snapshot",
    "plot_trend",
    "plots",
    "read_parquet",
    "sample_client",
    "sample_fleet",
    "save_snapshot",
    "style_states",
    "summary",
    "synthetic_fleet",
    "synthetic_history",
    "to_compliance_csv",
    "to_excel",
    "to_parquet",
    "trend",
]
