"""Small patches frames for the export tests, and text that tries to run as a formula."""

from __future__ import annotations

from typing import Any

import pandas as pd

from patchframe._schema import NodeKey, PatchColumns, build_patches

#: Cell texts a spreadsheet would run as formulas, were they not neutralised.
NASTY = ["=1+1", "+SUM(A1:A9)", "-2+3", "@SUM(A1)", '=HYPERLINK("http://x","y")', "\tx", "\rx"]


def patches(rows: dict[str, list[dict[str, Any]]], **node: list[str | None]) -> pd.DataFrame:
    """A patches frame from API records per node, in account 123456789012, eu-west-1."""
    parts = []
    for instance_id, records in rows.items():
        cols = PatchColumns()
        cols.extend(records)
        parts.append((NodeKey(instance_id, "123456789012", "eu-west-1"), cols))
    return build_patches(parts, node_columns=node or None)


def record(kb: str, state: str, **fields: Any) -> dict[str, Any]:
    return {"KBId": kb, "State": state, "InstalledTime": 0, **fields}
