"""Small hand-made patches frames for tests: one tuple per patch row."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from patchframe._schema import NodeKey, PatchColumns, build_patches

#: (KBId, State, Severity, Classification, InstalledTime, CVEIds), as the wire sends them.
Row = tuple[str, str, str, str, object, str]


def patches_from_rows(
    rows_by_node: Mapping[str, Sequence[Row]],
    *,
    account_id: str | None = None,
    region: str | None = None,
    node_columns: Mapping[str, Sequence[str | None]] | None = None,
) -> pd.DataFrame:
    """A typed patches frame; a row with a severity gets the title "Title of <KBId>"."""
    parts = []
    for instance_id, rows in rows_by_node.items():
        cols = PatchColumns()
        cols.extend(
            {
                "KBId": kb,
                "Title": f"Title of {kb}" if sev else "",
                "State": state,
                "Severity": sev,
                "Classification": cls,
                "InstalledTime": when,
                "CVEIds": cves,
            }
            for kb, state, sev, cls, when, cves in rows
        )
        parts.append((NodeKey(instance_id, account_id, region), cols))
    return build_patches(parts, node_columns=node_columns)
