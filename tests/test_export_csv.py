"""CSV as the Systems Manager console exports it: its columns, values and OWASP's defence."""

from __future__ import annotations

import csv
import dataclasses
import re
from pathlib import Path

import pytest
from export_frames import NASTY, patches, record

from patchframe._fleet import Fleet
from patchframe._schema import NON_COMPLIANT_STATES, AccountRow, build_accounts
from patchframe.exceptions import ValidationError
from patchframe.export import CSV_DETAIL_COLUMNS, CSV_SUMMARY_COLUMNS, to_compliance_csv


def read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_summary_csv(tmp_path: Path, sample_fleet_frames: Fleet) -> None:
    rows = read_csv(to_compliance_csv(sample_fleet_frames, tmp_path / "summary.csv"))
    assert tuple(rows[0]) == CSV_SUMMARY_COLUMNS
    body = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert [r["Index"] for r in body] == [
        str(i) for i in range(1, len(sample_fleet_frames.nodes) + 1)
    ]
    assert {r["Instance ID"] for r in body} == set(sample_fleet_frames.nodes["instance_id"])
    assert body[0]["Compliance status"] == "NON_COMPLIANT"
    assert body[0]["Compliance severity"] == "CRITICAL"
    assert {r["Noncompliant Informational severity patch count"] for r in body} <= {"0", ""}

    bad = sample_fleet_frames.patches[
        sample_fleet_frames.patches["state"].isin(list(NON_COMPLIANT_STATES))
    ]
    levels = bad["severity_level"].value_counts()
    for level in ("Critical", "High", "Medium", "Low", "Unspecified"):
        column = f"Noncompliant {level} severity patch count"
        assert sum(int(r[column] or 0) for r in body) == levels[level]
    node = sample_fleet_frames.nodes.set_index("instance_id").loc["i-0e1f2a3b4c5d6e7f8"]
    row = next(r for r in body if r["Instance ID"] == "i-0e1f2a3b4c5d6e7f8")
    assert row["Instance IP"] == node["ip_address"]
    assert row["Platform name"] == node["platform_name"]
    assert row["SSM Agent version"] == node["agent_version"]
    assert row["Patch baseline"] == node["baseline_id"]
    compliant = next(r for r in body if r["Compliance status"] == "COMPLIANT")
    assert compliant["Compliance severity"] == ""


def test_detail_csv_all_nodes_and_one(tmp_path: Path, sample_fleet_frames: Fleet) -> None:
    rows = read_csv(to_compliance_csv(sample_fleet_frames, tmp_path / "detail.csv", kind="detail"))
    assert tuple(rows[0]) == CSV_DETAIL_COLUMNS
    bad = sample_fleet_frames.patches[
        sample_fleet_frames.patches["state"].isin(list(NON_COMPLIANT_STATES))
    ]
    assert len(rows) - 1 == len(bad)
    body = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert {r["Logs URL"] for r in body} == {""}
    assert {r["Patch state"] for r in body} <= {
        "Missing",
        "Failed",
        "InstalledPendingReboot",
        "InstalledRejected",
        "AvailableSecurityUpdate",
    }
    assert all(r["Last report time"].endswith("Z") for r in body)

    one = "i-0e1f2a3b4c5d6e7f8"
    rows = read_csv(
        to_compliance_csv(
            sample_fleet_frames, tmp_path / "one.csv", kind="detail", instance_id=one
        )
    )
    assert {r[1] for r in rows[1:]} == {one}
    assert len(rows) - 1 == (bad["instance_id"] == one).sum()


def test_csv_neutralises_formulas_as_owasp_says(tmp_path: Path) -> None:
    rows = [record(f"KB{i}", "Missing", Title=t) for i, t in enumerate(NASTY)]
    frame = patches({"i-00000001": [*rows, record("KB9", "Missing", Title='say "hi", ok')]})
    path = to_compliance_csv(frame, tmp_path / "nasty.csv", kind="detail")
    titles = [r[3] for r in read_csv(path)[1:]]
    assert sorted(titles) == sorted([*("'" + t for t in NASTY), 'say "hi", ok'])
    raw = path.read_bytes().decode("utf-8")
    assert '"\'=1+1"' in raw and '"say ""hi"", ok"' in raw  # quoted, quotes doubled
    assert raw.startswith('"Index","Instance ID"') and "\r\n1," in raw


def test_csv_of_a_bare_frame_leaves_unknown_columns_empty(
    tmp_path: Path, sample_fleet_frames: Fleet
) -> None:
    rows = read_csv(to_compliance_csv(sample_fleet_frames.patches, tmp_path / "bare.csv"))
    body = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert len(body) == 12
    assert {r["Instance IP"] for r in body} == {""}
    assert {r["SSM Agent version"] for r in body} == {""}
    assert all(r["Platform name"] for r in body)


def test_csv_bad_arguments(tmp_path: Path, sample_fleet_frames: Fleet) -> None:
    with pytest.raises(ValidationError, match="kind 'everything'"):
        to_compliance_csv(sample_fleet_frames, tmp_path / "x.csv", kind="everything")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="'i-00000000' is not in the data"):
        to_compliance_csv(
            sample_fleet_frames, tmp_path / "x.csv", kind="detail", instance_id="i-00000000"
        )
    with pytest.raises(ValidationError, match=r"instance_id \['i-0e1f2a3b4c5d6e7f8'\]"):
        to_compliance_csv(
            sample_fleet_frames,
            tmp_path / "x.csv",
            kind="detail",
            instance_id=["i-0e1f2a3b4c5d6e7f8"],  # type: ignore[arg-type]
        )
    with pytest.raises(ValidationError, match="path 3: expected a file path"):
        to_compliance_csv(sample_fleet_frames, 3)  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())


def test_csv_summary_of_one_node_is_refused_not_ignored(
    tmp_path: Path, sample_fleet_frames: Fleet
) -> None:
    with pytest.raises(
        ValidationError, match="instance_id 'i-0e1f2a3b4c5d6e7f8' is for kind='detail'"
    ):
        to_compliance_csv(
            sample_fleet_frames, tmp_path / "x.csv", instance_id="i-0e1f2a3b4c5d6e7f8"
        )
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize("where", ["a folder", "in no folder", "under a file"])
def test_csv_to_a_path_that_cannot_be_written_names_it(
    tmp_path: Path, sample_fleet_frames: Fleet, where: str
) -> None:
    (tmp_path / "notes.txt").write_text("a file")
    path = {
        "a folder": tmp_path,
        "in no folder": tmp_path / "missing" / "x.csv",
        "under a file": tmp_path / "notes.txt" / "x.csv",
    }[where]
    with pytest.raises(ValidationError, match=re.escape(repr(str(path)))) as info:
        to_compliance_csv(sample_fleet_frames, path)
    assert isinstance(info.value.__cause__, OSError)


def test_a_never_scanned_node_says_so_with_empty_counts(
    tmp_path: Path, sample_fleet_frames: Fleet
) -> None:
    rows = read_csv(to_compliance_csv(sample_fleet_frames, tmp_path / "summary.csv"))
    body = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    (unscanned,) = [r for r in body if r["Compliance status"] == "NOT_SCANNED"]
    counts = [c for c in CSV_SUMMARY_COLUMNS if c.endswith("patch count")]
    assert {unscanned[c] for c in counts} == {""}  # nothing to count: not 0, not "<NA>"
    assert unscanned["Compliance severity"] == ""
    assert "<NA>" not in "".join(v for r in body for v in r.values())


def test_named_accounts_keep_the_consoles_columns(
    tmp_path: Path, sample_fleet_frames: Fleet
) -> None:
    """The console's reports name no account: neither its id nor its name is added."""
    row = AccountRow("123456789012", "prod-payments", "ACTIVE", ("eu-west-1",), None)
    fleet = dataclasses.replace(
        sample_fleet_frames, accounts=build_accounts([row], sample_fleet_frames.nodes)
    )
    for kind, columns in (("summary", CSV_SUMMARY_COLUMNS), ("detail", CSV_DETAIL_COLUMNS)):
        rows = read_csv(to_compliance_csv(fleet, tmp_path / f"{kind}.csv", kind=kind))
        assert tuple(rows[0]) == columns
        assert not any("prod-payments" in cell for r in rows for cell in r)
