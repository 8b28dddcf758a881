"""Finding each patch row's node, and the staleness rules the filters and summaries share."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from patchframe._nodes import node_positions
from patchframe.exceptions import ValidationError


def frames(accounts: int, regions: int, ids: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Nodes sharing instance ids across accounts and regions, and rows of them shuffled."""
    nodes = pd.DataFrame(
        [
            (f"{a:012d}", f"eu-west-{r + 1}", f"i-{i:08x}")
            for a in range(accounts)
            for r in range(regions)
            for i in range(ids)
        ],
        columns=["account_id", "region", "instance_id"],
    )
    rng = np.random.default_rng(1)
    picks = rng.integers(0, len(nodes), 500)
    # Categories of every node, as a frame sliced from a bigger one keeps them.
    every = {c: pd.CategoricalDtype(nodes[c].unique()) for c in nodes.columns}
    patches = nodes.iloc[picks].reset_index(drop=True).astype(every)
    return nodes, patches


@pytest.mark.parametrize(
    ("accounts", "regions", "ids"),
    [(2, 2, 10), (40, 20, 2_000)],  # a key table smaller than a column, and one far larger
    ids=["table", "hash"],
)
def test_rows_find_their_node_by_account_region_and_id(
    accounts: int, regions: int, ids: int
) -> None:
    nodes, patches = frames(accounts, regions, ids)
    if ids > 10:
        nodes = nodes.sample(frac=0.3, random_state=2).reset_index(drop=True)  # fewer nodes
    # A node first that no row names, in an account the rows do not know.
    stranger = pd.DataFrame([("999999999999", "eu-west-1", "i-00000000")], columns=nodes.columns)
    nodes = pd.concat([stranger, nodes], ignore_index=True)
    truth = patches.merge(nodes.reset_index(), how="left", on=list(nodes.columns))["index"]
    expected = truth.fillna(-1).astype(int).tolist()
    assert node_positions(patches, nodes).tolist() == expected
    assert -1 in expected or ids == 10


def test_unknown_account_matches_unknown_account() -> None:
    nodes = pd.DataFrame({"account_id": [None, "1"], "instance_id": ["i-00000001"] * 2})
    patches = pd.DataFrame({"account_id": ["1", None], "instance_id": ["i-00000001"] * 2})
    assert node_positions(patches, nodes).tolist() == [1, 0]


def test_a_node_listed_twice_is_refused() -> None:
    nodes = pd.DataFrame({"instance_id": ["i-00000001", "i-00000001"]})
    with pytest.raises(ValidationError, match="twice"):
        node_positions(nodes, nodes)


def test_a_node_the_rows_do_not_name_never_takes_rows_of_unknown_account() -> None:
    nodes = pd.DataFrame({"account_id": ["111111111111"], "instance_id": ["i-00000001"]})
    patches = pd.DataFrame({"account_id": [None], "instance_id": ["i-00000001"]})
    assert node_positions(patches, nodes).tolist() == [-1]
