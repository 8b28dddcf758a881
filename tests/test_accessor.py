"""The ``.pf`` accessor: registered, stateless, delegating, absent on other frames."""

from __future__ import annotations

import inspect

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from frames import patches_from_rows
from matplotlib.colors import to_hex

import patchframe as pf
import patchframe.accessor
from patchframe import filters, plots, summary
from patchframe.accessor import CORE_COLUMNS, PatchesAccessor
from patchframe.exceptions import ColumnsError

MODULES = (filters, summary, plots)
#: Functions of findings only: findings have no ``state``, so no ``.pf``, and a patches
#: frame holds no fixes.
NOT_METHODS = {(summary, "time_to_fix"), (plots, "time_to_fix")}
#: Whole nodes grouped: these take a Fleet (nodes and patches), not a patches frame.
NOT_METHODS |= {(summary, "compliance_by"), (plots, "compliance_by")}
#: A chart whose method is renamed, beside the table of the same name.
RENAMED = {(plots, "aging"): "plot_aging"}
FUNCTIONS = [(m, name) for m in MODULES for name in m.__all__ if (m, name) not in NOT_METHODS]


@pytest.fixture
def patches() -> pd.DataFrame:
    """Two nodes, one CVE open on both; small enough to know every answer."""
    return patches_from_rows(
        {
            "i-0000000a": [
                ("KB1", "Missing", "Critical", "", 0, "CVE-2024-1"),
                ("KB2", "Installed", "Low", "", 1.7e9, ""),
            ],
            "i-0000000b": [
                ("KB1", "Failed", "Critical", "", 0, "CVE-2024-1"),
                ("KB3", "InstalledPendingReboot", "", "", 1.71e9, ""),
            ],
        },
        node_columns={"platform_name": ["Ubuntu", "SLES"]},
    )


def test_registered_as_pf(patches: pd.DataFrame) -> None:
    assert isinstance(patches.pf, PatchesAccessor)
    assert patchframe.accessor.__name__ == "patchframe.accessor"


@pytest.mark.parametrize("column", CORE_COLUMNS)
def test_absent_on_a_frame_without_the_core_columns(patches: pd.DataFrame, column: str) -> None:
    other = patches.drop(columns=column)
    assert not hasattr(other, "pf")
    with pytest.raises(AttributeError, match=f"lacks '{column}'"):
        other.pf  # noqa: B018
    assert not hasattr(pd.DataFrame({"x": [1]}), "pf")


def test_methods_still_name_other_missing_columns(patches: pd.DataFrame) -> None:
    with pytest.raises(ColumnsError, match="severity_level"):
        patches.drop(columns="severity_level").pf.severity_at_least("High")


@pytest.mark.parametrize(("module", "name"), FUNCTIONS)
def test_every_function_is_a_method_with_the_same_options(module: object, name: str) -> None:
    function = inspect.signature(getattr(module, name))
    method = inspect.signature(getattr(PatchesAccessor, RENAMED.get((module, name), name)))
    assert list(method.parameters)[1:] == list(function.parameters)[1:]
    for option in list(function.parameters)[1:]:
        assert method.parameters[option].kind == function.parameters[option].kind
        assert method.parameters[option].default == function.parameters[option].default


def test_no_other_public_methods() -> None:
    public = {n for n in vars(PatchesAccessor) if not n.startswith("_")}
    methods = {RENAMED.get((module, name), name) for module, name in FUNCTIONS}
    assert public == methods | {"missing", "style_states"}


def test_style_states_delegates(patches: pd.DataFrame) -> None:
    styled = patches.head(3).pf.style_states(caption="three rows")
    assert "three rows" in styled.to_html()


def test_filters_delegate(patches: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        patches.pf.by_state("Missing", "Failed"), filters.by_state(patches, "Missing", "Failed")
    )
    pd.testing.assert_frame_equal(patches.pf.missing(), filters.by_state(patches, "MISSING"))
    pd.testing.assert_frame_equal(patches.pf.by_platform("sles"), patches.iloc[2:])
    pd.testing.assert_frame_equal(
        patches.pf.installed_between("2023-01-01", "2024-01-01"),
        filters.installed_between(patches, "2023-01-01", "2024-01-01"),
    )


def test_summaries_delegate(patches: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        patches.pf.node_compliance(now="2024-06-01"),
        summary.node_compliance(patches, now="2024-06-01"),
    )
    pd.testing.assert_frame_equal(
        patches.pf.install_activity(freq="M"), summary.install_activity(patches, freq="M")
    )
    pd.testing.assert_frame_equal(patches.pf.cve_exposure(), summary.cve_exposure(patches))


def test_sla_summaries_delegate(patches: pd.DataFrame) -> None:
    released = patches.assign(release_date=pd.Timestamp("2024-05-01", tz="UTC"))
    options = {"policy": {"Critical": 15}, "clock": "release", "now": "2024-06-01"}
    dated = released.pf.sla(**options)
    pd.testing.assert_frame_equal(dated, summary.sla(released, **options))
    assert dated["status"].tolist() == ["breached", "breached"]  # KB1, missing and failed
    pd.testing.assert_frame_equal(
        released.pf.sla_breaches(**options, by="platform_name"),
        summary.sla_breaches(released, **options, by="platform_name"),
    )
    pd.testing.assert_frame_equal(
        released.pf.aging(clock="release", now="2024-06-01"),
        summary.aging(released, clock="release", now="2024-06-01"),
    )
    ax = released.pf.plot_aging(clock="release", now="2024-06-01", palette={"Critical": "#123456"})
    assert {to_hex(bar.get_facecolor()) for bar in ax.patches} == {"#123456"}
    assert [text.get_text() for text in ax.get_xticklabels()][3] == "31-90"


def test_charts_delegate(patches: pd.DataFrame) -> None:
    _, ax = plt.subplots()
    assert patches.pf.states_by_node(ax=ax, top=1) is ax
    assert ax.get_yticklabels()[-1].get_text() == "other 1 node (mean)"
    assert patches.pf.top_cves(top=1).get_title() == "Open CVEs by nodes affected"


def test_charts_pass_palette_legend_and_matplotlib_options_through(
    patches: pd.DataFrame,
) -> None:
    ax = patches.pf.top_cves(palette={"Critical": "#123456"}, legend=False, edgecolor="#abcdef")
    (bar,) = ax.patches
    assert to_hex(bar.get_facecolor()) == "#123456"
    assert to_hex(bar.get_edgecolor()) == "#abcdef"
    assert ax.get_legend() is None


def test_a_chain_reads_left_to_right(patches: pd.DataFrame) -> None:
    chained = patches.pf.non_compliant().pf.severity_at_least("Critical").pf.top_missing(top=5)
    direct = summary.top_missing(
        filters.severity_at_least(filters.non_compliant(patches), "Critical"), top=5
    )
    pd.testing.assert_frame_equal(chained, direct)
    assert chained[["kb_id", "nodes", "missing", "failed"]].to_numpy().tolist() == [
        ["KB1", 2, 1, 1]
    ]


def test_each_frame_answers_for_itself_and_stays_unchanged(sample_patches: pd.DataFrame) -> None:
    before = sample_patches.copy(deep=True)
    first = str(sample_patches["instance_id"].iloc[0])
    one_node = sample_patches[sample_patches["instance_id"] == first]
    assert one_node.pf.node_compliance()["instance_id"].tolist() == [first]
    whole = sample_patches.pf.node_compliance()
    assert len(whole) == sample_patches["instance_id"].nunique() > 1
    pd.testing.assert_frame_equal(sample_patches.pf.node_compliance(), whole)  # no state kept
    sample_patches.pf.non_compliant()
    sample_patches.pf.states_by_node()
    pd.testing.assert_frame_equal(sample_patches, before)


def test_stale_and_unreachable_take_the_nodes_frame(sample_fleet_frames: pf.Fleet) -> None:
    fleet = sample_fleet_frames.as_of("2024-06-14T08:00Z")
    patches, nodes = fleet.patches, fleet.nodes
    pd.testing.assert_frame_equal(
        patches.pf.stale(3, nodes=nodes), filters.stale(patches, 3, nodes=nodes)
    )
    assert patches.pf.stale(20, nodes=nodes).empty  # the lost node's scan is 14 days old
    assert patches.pf.stale(nodes=nodes)["instance_id"].unique().tolist() == [
        "mi-0c2a5e7f9b1d3486a"
    ]
    pd.testing.assert_frame_equal(
        patches.pf.unreachable(nodes=nodes), filters.unreachable(patches, nodes=nodes)
    )
    with pytest.raises(ColumnsError, match=r"nodes=fleet\.nodes"):
        patches.pf.stale()
