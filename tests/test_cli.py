"""The patchframe command: in-process through main() for every path, and once as the
installed script, on the sample fleet."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from patchframe import cli
from patchframe._fleet import Fleet
from patchframe._schema import AccountRow, build_accounts, build_errors
from patchframe.aws import Organization
from patchframe.exceptions import AWSRequestError
from patchframe.sandbox import emulator
from patchframe.summary import compliance_by

CHARTS = [
    "states-by-node.png",
    "severity-by-state.png",
    "top-cves.png",
    "compliance-by-platform.png",
    "install-timeline.png",
]
FILES = [cli.WORKBOOK, cli.SUMMARY_CSV, *CHARTS]
PNG = b"\x89PNG\r\n\x1a\n"
SAMPLE_ACCOUNT = "123456789012"


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials, no configuration, and no instance metadata service to ask."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    empty = tmp_path / "aws-config"
    empty.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def one_error_line(err: str, start: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(start), err
    return lines[0]


def test_report_sample(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    assert cli.main(["report", "--sample", "--no-progress", "--top", "5", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert printed.err == ""
    lines = printed.out.splitlines()
    assert lines[0] == "Sample fleet: 13 nodes in 1 account and 1 region, 2,020 patch rows"
    assert "  non-compliant nodes       11" in lines
    assert "Top 5 missing patches (MISSING or FAILED), by nodes affected:" in lines
    top = lines.index("Top 5 missing patches (MISSING or FAILED), by nodes affected:")
    assert lines[top + 1].split() == ["patch", "nodes", "severity", "title"]
    assert lines[top + 2].split()[:2] == ["KB2267602", "3"]
    assert f"Wrote {len(FILES)} files to {out.resolve()}:" in lines
    for name in FILES:
        assert any(line.split()[0] == name for line in lines if line.startswith("  "))
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    for chart in CHARTS:
        assert (out / chart).read_bytes().startswith(PNG)
    book = openpyxl.load_workbook(out / cli.WORKBOOK)
    assert book.sheetnames[0] == "Summary"
    assert (out / cli.SUMMARY_CSV).read_text(encoding="utf-8").count("\n") == 14


def test_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    assert "report" in capsys.readouterr().out
    assert cli.main(["report", "--help"]) == 0
    text = capsys.readouterr().out
    for option in ("--sample", "--profile P", "--region R", "--out DIR", "--top N"):
        assert option in text
    assert "--no-progress  no progress bar" in text
    assert cli.main(["serve", "--help"]) == 0
    assert "--synthetic N" in capsys.readouterr().out
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("patchframe ")


@pytest.mark.parametrize(
    ("argv", "start"),
    [
        (["report", "--bogus"], "patchframe report: error: unrecognized arguments: --bogus"),
        (["report", "--top", "0"], "patchframe report: error: argument --top: '0'"),
        (["report", "--top", "ten"], "patchframe report: error: argument --top: 'ten'"),
        (["report", "--sample", "--region", "eu-west-1"], "patchframe report: error: --sample"),
        ([], "patchframe: error: choose a command"),
        (["frobnicate"], "patchframe: error: argument COMMAND: invalid choice"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    argv: list[str], start: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 2
    printed = capsys.readouterr()
    assert printed.out == ""
    assert one_error_line(printed.err, start).endswith("--help')")


@pytest.mark.usefixtures("no_aws")
@pytest.mark.parametrize(
    ("argv", "start"),
    [
        (["--profile", "nope", "--region", "eu-west-1"], "profile 'nope' is not in"),
        (["--organization", "--role-name", "R", "--profile", "nope"], "profile 'nope' is not in"),
        (["--region", "moon-1"], "region 'moon-1'"),
        ([], "no region"),
    ],
)
def test_bad_profile_or_region_is_a_usage_error(
    argv: list[str], start: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["report", *argv]) == 2
    line = one_error_line(capsys.readouterr().err, f"patchframe report: error: {start}")
    assert line.endswith("(see 'patchframe report --help')")


@pytest.mark.usefixtures("no_aws")
def test_no_credentials_exit_1_and_point_to_the_sample(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    argv = ["report", "--region", "eu-west-1", "--no-progress", "--out", str(out)]
    assert cli.main(argv) == 1
    printed = capsys.readouterr()
    line = one_error_line(printed.err, "patchframe: error: GetCallerIdentity failed")
    assert "NoCredentialsError" in line and "patchframe report --sample" in line
    assert not out.exists()


def test_aws_error_exit_1(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(**kwargs: object) -> Fleet:
        raise AWSRequestError(
            "DescribeInstanceInformation failed: AccessDeniedException: not allowed\n(details)",
            code="AccessDeniedException",
            operation="DescribeInstanceInformation",
        )

    monkeypatch.setattr(cli, "load_fleet", refuse)
    assert cli.main(["report", "--region", "eu-west-1", "--out", str(tmp_path / "r")]) == 1
    line = one_error_line(capsys.readouterr().err, "patchframe: error: DescribeInstance")
    assert line.endswith("not allowed (details)")


@pytest.mark.parametrize(("code", "way_out"), [("NoCredentialsError", True), ("Other", False)])
def test_the_way_out_follows_the_error_code_not_the_text(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    code: str,
    way_out: bool,
) -> None:
    def refuse(**kwargs: object) -> Fleet:
        # The text names no credentials at all: only the code may decide.
        raise AWSRequestError("GetCallerIdentity failed", code=code, operation="GetCallerIdentity")

    monkeypatch.setattr(cli, "load_fleet", refuse)
    assert cli.main(["report", "--region", "eu-west-1", "--out", str(tmp_path / "r")]) == 1
    line = one_error_line(capsys.readouterr().err, "patchframe: error: GetCallerIdentity failed")
    assert line.endswith("; or try: patchframe report --sample") is way_out


def test_unwritable_folder_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert cli.main(["report", "--sample", "--no-progress", "--out", str(blocker)]) == 1
    one_error_line(capsys.readouterr().err, "patchframe: error: cannot write the report into")


def test_partial_errors_write_the_report_and_warn(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    sample_fleet_frames: Fleet,
) -> None:
    fleet = sample_fleet_frames
    error = {
        "account_id": "123456789012",
        "region": "eu-west-1",
        "instance_id": "i-0123456789abcdef0",
        "operation": "DescribeInstancePatches",
        "error_code": "ThrottlingException",
        "message": "DescribeInstancePatches for node i-0123456789abcdef0 failed: Rate exceeded",
        "attempts": 10,
    }
    partial = Fleet(fleet.patches, fleet.nodes, build_errors([error]))
    monkeypatch.setattr(cli, "load_fleet", lambda **kwargs: partial)
    out = tmp_path / "report"
    assert cli.main(["report", "--region", "eu-west-1", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "  errors                     1" in printed.out.splitlines()
    line = one_error_line(printed.err, "patchframe: warning: 1 error while loading")
    assert line.endswith("failed: Rate exceeded")
    errors = openpyxl.load_workbook(out / cli.WORKBOOK)["Errors"]
    assert errors.max_row == 2 and errors["F2"].value == error["message"]


def test_installed_script_writes_the_sample_report(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("patchframe")
    if not script.exists():
        pytest.skip(f"no patchframe script beside {sys.executable}: install the package")
    out = tmp_path / "report"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [str(script), "report", "--sample", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Sample fleet: 13 nodes")
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)


def test_nothing_loaded_exit_1(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    sample_fleet_frames: Fleet,
) -> None:
    fleet = sample_fleet_frames
    nodes = fleet.nodes.assign(patch_rows=pd.array([None] * len(fleet.nodes), dtype="Int64"))
    error = {"operation": "DescribeInstancePatches", "error_code": "AccessDeniedException"}
    error["message"] = "DescribeInstancePatches for node i-0e1f2a3b4c5d6e7f8 failed: denied"
    failed = Fleet(fleet.patches.iloc[:0], nodes, build_errors([error]))
    monkeypatch.setattr(cli, "load_fleet", lambda **kwargs: failed)
    out = tmp_path / "report"
    assert cli.main(["report", "--region", "eu-west-1", "--out", str(out)]) == 1
    printed = capsys.readouterr()
    assert printed.out == "" and not out.exists()
    one_error_line(printed.err, "patchframe: error: DescribeInstancePatches for node")


def test_serve_delegates_and_its_errors_are_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[int] = []

    def serve(args: argparse.Namespace) -> int:
        seen.append(args.port)
        raise OSError(98, "Address already in use")

    monkeypatch.setattr(emulator, "serve", serve)
    assert cli.main(["serve", "--port", "8123"]) == 1
    assert seen == [8123]
    one_error_line(capsys.readouterr().err, "patchframe: error: [Errno 98] Address already")


def test_report_prints_sla_breaches_from_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sample_fleet_frames: Fleet
) -> None:
    from patchframe.history import save_snapshot

    store = tmp_path / "store"
    save_snapshot(sample_fleet_frames, store, when="2024-01-01")
    argv = ["report", "--sample", "--no-progress", "--out", str(tmp_path / "report")]
    sla = ["--snapshot-store", str(store), "--sla", "critical=15,High=30"]
    assert cli.main([*argv, *sla]) == 0
    lines = capsys.readouterr().out.splitlines()
    # Every MISSING or FAILED Critical and High patch has been open since 2024-01-01.
    open_rows = sample_fleet_frames.patches[
        sample_fleet_frames.patches["state"].isin(["MISSING", "FAILED"])
    ]
    levels = open_rows["severity_level"].astype("str").value_counts()
    critical, high = int(levels["Critical"]), int(levels["High"])
    first = lines.index(
        f"Remediation SLA (Critical 15 days, High 30 days): {critical + high} open findings "
        "past due"
    )
    assert lines[first + 1].startswith("  from 2 snapshots, 2024-01-01 to ")
    assert lines[first + 2] == "  severity       open  breached  fixed late  worst overdue"
    assert lines[first + 3].split()[:4] == ["Critical", str(critical), str(critical), "0"]
    assert lines[first + 4].split()[:4] == ["High", str(high), str(high), "0"]
    assert lines[first + 5] == ""
    # The workbook carries the same open findings, worst first, on its Aging sheet.
    book = openpyxl.load_workbook(tmp_path / "report" / cli.WORKBOOK, read_only=True)
    assert "Aging" in book.sheetnames
    assert book["Aging"].max_row - 1 == len(open_rows)


def test_report_sla_of_a_new_store_breaches_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["report", "--sample", "--no-progress", "--out", str(tmp_path / "report")]
    sla = ["--snapshot-store", str(tmp_path / "store"), "--sla", "Critical=15"]
    assert cli.main([*argv, *sla]) == 0
    lines = capsys.readouterr().out.splitlines()
    first = lines.index("Remediation SLA (Critical 15 days): 0 open findings past due")
    assert lines[first + 3].split() == ["Critical", "41", "0", "0", "-"]


@pytest.mark.parametrize(
    ("argv", "start"),
    [
        (["--sla", "Important=3"], "argument --sla: 'Important' is not a severity level; the"),
        (["--sla", "Critical"], "argument --sla: 'Critical' is not LEVEL=DAYS"),
        (["--sla", "Critical=-1"], "argument --sla: Critical -1 is negative"),
        (["--sla", "Critical=15"], "--sla needs --snapshot-store"),
    ],
)
def test_sla_usage_errors_exit_2_before_loading(
    argv: list[str], start: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["report", "--sample", *argv]) == 2
    printed = capsys.readouterr()
    assert printed.out == ""
    assert one_error_line(printed.err, f"patchframe report: error: {start}")


def test_help_explains_sla(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["report", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--sla POLICY with --snapshot-store: print the findings past their due date" in text
    assert "e.g. Critical=15,High=30" in text


def test_report_by_team_prints_the_groups_and_writes_the_block(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    sample_fleet_frames: Fleet,
) -> None:
    fleet = sample_fleet_frames.as_of("2024-06-14T08:00Z")  # the sample's clock
    monkeypatch.setattr(cli, "load_fleet", lambda **kwargs: fleet)
    out = tmp_path / "report"
    argv = ["report", "--region", "eu-west-1", "--by", "tag:Team", "--out", str(out)]
    assert cli.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    head = lines.index("By Team, most non-compliant nodes first:")
    assert lines[head + 1].split()[:4] == ["Team", "nodes", "non-compliant", "never"]
    groups = compliance_by(fleet, by="tag:Team")
    shown = [line.split() for line in lines[head + 2 : head + 2 + len(groups)]]
    assert [row[0] for row in shown] == groups["tag:Team"].tolist()
    assert [int(row[5]) for row in shown] == groups["unreachable"].tolist()
    assert shown[6][6] == "50%"  # payments: one of its two nodes compliant
    assert lines[head + 2 + len(groups)].startswith("  stale: never scanned")
    book = openpyxl.load_workbook(out / cli.WORKBOOK)
    assert "ComplianceByGroup" in book.defined_names
    assert any(c.value == "tag:Team" for c in book["Nodes"][1])


def test_report_by_a_tag_nobody_has_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], sample_fleet_frames: Fleet
) -> None:
    monkeypatch.setattr(cli, "load_fleet", lambda **kwargs: sample_fleet_frames)
    assert cli.main(["report", "--region", "eu-west-1", "--by", "tag:team"]) == 2
    printed = capsys.readouterr()
    line = one_error_line(printed.err, "patchframe report: error: --by tag:team:")
    assert "did you mean 'Team'" in line and printed.out == ""


@pytest.mark.parametrize(("flag", "progress"), [([], None), (["--no-progress"], False)])
def test_progress_is_left_to_the_convention_unless_turned_off(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    sample_fleet_frames: Fleet,
    flag: list[str],
    progress: bool | None,
) -> None:
    asked: list[object] = []

    def load(**kwargs: object) -> Fleet:
        asked.append(kwargs["progress"])
        return sample_fleet_frames

    monkeypatch.setattr(cli, "load_fleet", load)
    assert cli.main(["report", "--region", "eu-west-1", *flag, "--out", str(tmp_path)]) == 0
    assert asked == [progress]


def test_all_regions_asks_for_each_accounts_enabled_regions(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sample_fleet_frames: Fleet
) -> None:
    asked: list[dict[str, object]] = []

    def load(**kwargs: object) -> Fleet:
        asked.append(kwargs)
        return sample_fleet_frames

    monkeypatch.setattr(cli, "load_fleet", load)
    argv = ["report", "--profile", "p", "--all-regions", "--no-progress", "--out", str(tmp_path)]
    assert cli.main(argv) == 0
    assert [(kwargs["profiles"], kwargs["regions"]) for kwargs in asked] == [(["p"], "enabled")]


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--port", "65536"], "--port"),
        (["--port", "-1"], "--port"),
        (["--port", "http"], "--port"),
        (["--latency", "-0.5"], "--latency"),
        (["--latency", "nan"], "--latency"),
        (["--latency", "inf"], "--latency"),
        (["--error-rate", "1.5"], "--error-rate"),
        (["--drop-rate", "-0.1"], "--drop-rate"),
        (["--expire-rate", "nan"], "--expire-rate"),
        (["--rate-limit", "0.5"], "--rate-limit"),
        (["--rate-limit", "0"], "--rate-limit"),
        (["--burst", "0"], "--burst"),
        (["--burst", "2.5"], "--burst"),
        (["--max-patch-results", "9"], "--max-patch-results"),
        (["--max-patch-results", "101"], "--max-patch-results"),
        (["--synthetic", "0"], "--synthetic"),
    ],
)
def test_serve_checks_every_flag_before_the_server_starts(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    named: str,
) -> None:
    started: list[object] = []
    monkeypatch.setattr(emulator.Emulator, "start", lambda self: started.append(self))
    assert cli.main(["serve", *flags]) == 2
    printed = capsys.readouterr()
    assert printed.out == "" and started == []
    one_error_line(printed.err, f"patchframe serve: error: argument {named}:")
    assert "Traceback" not in printed.err


def test_report_says_which_existing_files_it_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    out.mkdir()
    (out / cli.SUMMARY_CSV).write_text("an older summary\n", encoding="utf-8")
    (out / "notes.txt").write_text("mine\n", encoding="utf-8")
    command = ["report", "--sample", "--no-progress", "--out", str(out)]
    assert cli.main(command) == 0
    replaced = [line for line in capsys.readouterr().out.splitlines() if "Replaced" in line]
    assert replaced == [f"Replaced 1 existing file: {cli.SUMMARY_CSV}"]
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine\n"
    assert cli.main(command) == 0
    replaced = [line for line in capsys.readouterr().out.splitlines() if "Replaced" in line]
    assert replaced == [f"Replaced {len(FILES)} existing files: {', '.join(FILES)}"]


def test_report_into_a_new_folder_replaces_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["report", "--sample", "--no-progress", "--out", str(tmp_path / "r")]) == 0
    assert "Replaced" not in capsys.readouterr().out


# --- organizations ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "start"),
    [
        (["--organization"], "--organization needs --role-name"),
        (["--role-name", "R"], "--role-name go with --organization"),
        (["--unit", "r-ab12", "--skip", "111122223333"], "--unit and --skip go with"),
        (["--sample", "--organization", "--role-name", "R"], "--sample loads a sample"),
        (["--sample-organization", "--region", "eu-west-1"], "--sample-organization loads"),
        (["--sample", "--sample-organization"], "--sample and --sample-organization"),
        (["--region", "eu-west-1", "--all-regions"], "--region and --all-regions"),
        (
            ["--organization", "--role-name", "R", "--profile", "a", "--profile", "b"],
            "--organization takes one --profile",
        ),
        (["--organization", "--role-name", "arn:aws:iam::1:role/R"], "role_name 'arn:"),
        (["--organization", "--role-name", "R", "--unit", "ou-1"], "units: 'ou-1'"),
    ],
)
def test_organization_usage_errors_exit_2_before_any_call(
    argv: list[str], start: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["report", "--no-progress", *argv]) == 2
    one_error_line(capsys.readouterr().err, f"patchframe report: error: {start}")


def test_report_sample_organization(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    argv = ["report", "--sample-organization", "--no-progress", "--out", str(out)]
    assert cli.main(argv) == 0
    printed = capsys.readouterr()
    assert printed.err == ""
    lines = printed.out.splitlines()
    assert lines[0].startswith("Sample organization: ")
    assert "in 5 accounts and 2 regions" in lines[0]
    head = next(i for i, line in enumerate(lines) if line.split()[:2] == ["account", "id"])
    accounts = lines[head + 1 : head + 6]
    assert accounts[0].split()[0] == "management"
    assert all(line.split()[2] == "ACTIVE" for line in accounts)
    workbook = next(line for line in lines if line.split()[:1] == [cli.WORKBOOK])
    assert workbook.endswith("; Accounts")
    book = openpyxl.load_workbook(out / cli.WORKBOOK, read_only=True)
    assert "Accounts" in book.sheetnames


@pytest.mark.parametrize("profile", [None, "known"])
def test_organization_takes_the_profiles_session_or_the_default(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    sample_fleet_frames: Fleet,
    profile: str | None,
) -> None:
    config = tmp_path / "aws-config"
    config.write_text("[profile known]\nregion = eu-west-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    asked: list[object] = []

    def load(**kwargs: object) -> Fleet:
        asked.append(kwargs["organization"])
        return sample_fleet_frames

    monkeypatch.setattr(cli, "load_fleet", load)
    argv = ["report", "--organization", "--role-name", "R", "--out", str(tmp_path / "r")]
    assert cli.main([*argv, *(["--profile", profile] if profile else [])]) == 0
    [organization] = asked
    assert isinstance(organization, Organization)
    if profile is None:
        assert organization.session is None  # boto3's default session
    else:
        assert organization.session is not None
        assert organization.session.profile_name == profile


def accounts_of(fleet: Fleet) -> pd.DataFrame:
    """The sample's account beside one pending, one that failed and one never tried."""
    rows = [
        AccountRow(SAMPLE_ACCOUNT, "prod", "ACTIVE", ("eu-west-1",), None),
        AccountRow("444455556666", "new", "PENDING_ACTIVATION", ("eu-west-1",), None),
        AccountRow("777788889999", "old", "SUSPENDED", (), "AccessDenied"),
        AccountRow("555555555555", "gone", None, (), None, loaded=False),
    ]
    return build_accounts(rows, fleet.nodes)


def test_accounts_table_keeps_its_columns_aligned_past_a_long_state(
    sample_fleet_frames: Fleet,
) -> None:
    head, *rows = cli._accounts_table(accounts_of(sample_fleet_frames)).splitlines()
    assert len(rows) == 4
    state, nodes = head.index("state"), head.index("nodes")
    states = [row[state:nodes].strip() for row in rows]
    assert states == ["ACTIVE", "PENDING_ACTIVATION", "SUSPENDED", ""]
    assert [row[nodes : nodes + 5].strip() for row in rows] == ["13", "0", "-", "-"]
    assert all(row[nodes - 2 : nodes] == "  " for row in [head, *rows])


def test_accounts_table_says_why_an_account_has_no_figures(sample_fleet_frames: Fleet) -> None:
    rows = cli._accounts_table(accounts_of(sample_fleet_frames)).splitlines()[1:]
    assert rows[0].endswith("  eu-west-1")
    assert rows[2].split()[-2:] == ["failed:", "AccessDenied"]
    assert rows[3].endswith("  not loaded")
