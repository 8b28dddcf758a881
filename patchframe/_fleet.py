"""The result of a fleet load: patches, nodes and errors."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ._html import fleet_html
from ._text import counted

__all__ = ["Fleet"]


@dataclass(frozen=True, eq=False)
class Fleet:
    """Every node's patches, the nodes themselves, and what failed.

    Attributes
    ----------
    patches
        One row per node and patch: the data contract's columns plus the node
        columns computer_name, platform_type, platform_name, platform_version,
        patch_group and baseline_id.
    nodes
        One row per node: instance information, patch-state counts (columns
        named after the states in lower case), ``compliance`` by AWS's rules and
        ``patch_rows``, the rows loaded (NA for a node that failed).
    errors
        One row per failed node or call: account_id, region, instance_id,
        operation, error_code, message, attempts. Empty when nothing failed.

    Examples
    --------
    >>> import patchframe as pf
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> fleet.figures()["errors"]
    0
    """

    patches: pd.DataFrame
    nodes: pd.DataFrame
    errors: pd.DataFrame

    def figures(self) -> dict[str, int]:
        """The figures at a glance: nodes, patches, non-compliant nodes, errors.

        Named apart from :mod:`patchframe.summary`, whose functions return frames:
        these are a few counts, as the repr and the HTML show them.

        Examples
        --------
        >>> import patchframe as pf
        >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
        >>> figures = fleet.figures()
        >>> figures["accounts"], figures["regions"], figures["errors"]
        (1, 1, 0)
        """
        nodes = self.nodes
        return {
            "nodes": len(nodes),
            "patches": len(self.patches),
            "non_compliant_nodes": int((nodes["compliance"] == "NON_COMPLIANT").sum()),
            "failed_nodes": int(nodes["patch_rows"].isna().sum()),
            "errors": len(self.errors),
            "accounts": int(nodes["account_id"].nunique()),
            "regions": int(nodes["region"].nunique()),
        }

    def __repr__(self) -> str:
        s = self.figures()
        return (
            f"<Fleet: {counted(s['nodes'], 'node')} in {counted(s['accounts'], 'account')} and "
            f"{counted(s['regions'], 'region')}, {counted(s['patches'], 'patch', 'patches')}, "
            f"{counted(s['non_compliant_nodes'], 'non-compliant node')}, "
            f"{counted(s['errors'], 'error')}>"
        )

    def _repr_html_(self) -> str:
        """The figures, nodes by compliance and patches by state, as Jupyter shows a Fleet.

        Examples
        --------
        >>> import patchframe as pf
        >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
        >>> "non-compliant nodes" in fleet._repr_html_()
        True
        """
        return fleet_html(self)
