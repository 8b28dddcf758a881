"""Patch history: snapshots in a store, what changed between two fleets, compliance over time.

:func:`save_snapshot`, :func:`list_snapshots`, :func:`load_snapshot` and
:class:`Snapshot` keep fleets in a store (:mod:`patchframe.history._store`, whose
notes describe the layout, safe writes and damage); :func:`diff` says what changed
between two fleets; :func:`trend` and :func:`plot_trend` show compliance over time;
:func:`findings` lists every episode of a patch missing on a node, for remediation
SLAs (:func:`patchframe.summary.sla`); :func:`athena_ddl` defines Athena tables over a
store on S3 (:mod:`patchframe.history._athena`).
:func:`plot_trend` loads matplotlib on first use, not on ``import patchframe.history``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._athena import athena_ddl
from ._diff import FleetDiff, diff
from ._findings import findings
from ._store import Snapshot, list_snapshots, load_snapshot, save_snapshot
from ._trend import trend

if TYPE_CHECKING:
    from ._plot import plot_trend

__all__ = [
    "FleetDiff",
    "Snapshot",
    "athena_ddl",
    "diff",
    "findings",
    "list_snapshots",
    "load_snapshot",
    "plot_trend",
    "save_snapshot",
    "trend",
]


def __getattr__(name: str) -> Any:
    if name == "plot_trend":
        value = import_module("._plot", __name__).plot_trend
        globals()[name] = value  # looked up once
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
