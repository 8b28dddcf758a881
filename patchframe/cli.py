"""The ``patchframe`` command: ``patchframe report`` and ``patchframe serve``.

``patchframe report`` loads a fleet (the bundled sample with ``--sample``, or
every node of the given profiles and regions), prints its figures and writes
a report folder: the Excel workbook, the AWS-style compliance summary
CSV and PNG charts. ``patchframe serve`` runs the local Systems Manager emulator.

Exit codes: 0 when the report was written (nodes that failed to load are listed
in the workbook's Errors sheet and counted on the terminal); 1 when nothing
could be loaded or written (an AWS error, a file that cannot be created); 2 for
a bad option or argument. Errors end with one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError

from ._fleet import Fleet
from ._schema import accounts_worth_listing
from ._sla import check_policy
from ._text import counted
from ._version import VERSION
from .aws import Organization, load_fleet, profile_session
from .exceptions import AWSRequestError, PatchframeError, ValidationError

__all__ = ["main"]

_PROG = "patchframe"
WORKBOOK = "patch-compliance.xlsx"
SUMMARY_CSV = "compliance-summary.csv"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (and exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class _NarrowHelp(argparse.HelpFormatter):
    """Help in the column that ``--no-progress`` needs: longer options get a line of their own."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=len("  --no-progress  "))


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return value


def _sla_policy(text: str) -> dict[str, pd.Timedelta]:
    """``Critical=15,High=30``: whole days to fix per severity level."""
    policy: dict[str, int] = {}
    for term in text.split(","):
        level, _, days = term.partition("=")
        try:
            policy[level.strip()] = int(days)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{term.strip()!r} is not LEVEL=DAYS (whole days), e.g. Critical=15,High=30"
            ) from None
    try:
        return check_policy(policy)
    except ValidationError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("policy: ")) from None


def _parser() -> _Parser:
    parser = _Parser(
        prog=_PROG,
        description="AWS Systems Manager patch compliance as typed pandas DataFrames.",
        epilog="Try it with no AWS account: patchframe report --sample",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {VERSION}")
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")

    report = commands.add_parser(
        "report",
        help="load a fleet, print its figures, write the workbook, CSV and charts",
        description=(
            "Load every managed node's patches, print the fleet's figures (nodes, "
            "non-compliant nodes, errors, the most widespread missing patches) and "
            f"write a report folder: {WORKBOOK} (Summary, Patches, Missing and "
            f"Failed, CVEs, Nodes, Errors), {SUMMARY_CSV} (the columns of the AWS "
            "console's patch compliance report) and PNG charts."
        ),
        epilog=(
            "Exit codes: 0 report written (failed nodes are listed in the Errors "
            "sheet), 1 nothing loaded or written, 2 bad option."
        ),
    )
    source = report.add_argument_group(
        "what to load (--sample, profiles and regions, or an organization)"
    )
    source.add_argument(
        "--sample",
        action="store_true",
        help="the bundled sample fleet, served by the local emulator: no AWS account needed",
    )
    source.add_argument(
        "--sample-organization",
        action="store_true",
        help="a sample AWS Organization of 5 accounts in 2 regions, served by the local "
        "emulator and loaded through an assumed role: no AWS account needed",
    )
    source.add_argument(
        "--profile",
        dest="profiles",
        action="append",
        metavar="P",
        help="an AWS profile (one account); repeat for more; default: the default credentials",
    )
    source.add_argument(
        "--region",
        dest="regions",
        action="append",
        metavar="R",
        help="a region such as eu-west-1; repeat for more; default: the profile's region",
    )
    source.add_argument(
        "--all-regions",
        action="store_true",
        help="every region enabled for each account (EC2 DescribeRegions), instead of --region",
    )
    source.add_argument(
        "--organization",
        action="store_true",
        help="every account of the AWS Organization the credentials (or the one --profile) "
        "manage, each through the role --role-name",
    )
    source.add_argument(
        "--role-name",
        metavar="NAME",
        help="with --organization: the role to assume in each member account",
    )
    source.add_argument(
        "--unit",
        dest="units",
        action="append",
        metavar="OU",
        help="with --organization: only the accounts in this unit (ou-...) or root (r-...) "
        "and its child units; repeat for more",
    )
    source.add_argument(
        "--skip",
        action="append",
        metavar="ACCOUNT",
        help="with --organization: leave out this account id; repeat for more",
    )
    output = report.add_argument_group("output")
    output.add_argument(
        "--out",
        type=Path,
        default=Path("patchframe-report"),
        metavar="DIR",
        help="folder to write the report into, made if needed (default: ./patchframe-report)",
    )
    output.add_argument(
        "--top",
        type=_positive,
        default=10,
        metavar="N",
        help="how many of the most widespread missing patches to list (default: 10)",
    )
    output.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="no progress bar while loading (there is none when stderr is not a terminal)",
    )
    output.add_argument(
        "--by",
        metavar="GROUP",
        help="also show compliance per group of nodes, on the terminal and on the "
        "workbook's Summary: a tag as tag:KEY (tag:Team) or a node column (platform_name)",
    )
    # The help column stays where the other options put it; this long one gets its own line.
    report.formatter_class = _NarrowHelp
    output.add_argument(
        "--snapshot-store",
        metavar="DIR",
        help="also save the fleet as a snapshot in this store, for history, diffs and trends: "
        "a folder (made if needed) or an s3://bucket/prefix",
    )
    output.add_argument(
        "--sla",
        type=_sla_policy,
        metavar="POLICY",
        help="with --snapshot-store: print the findings past their due date by this "
        "remediation policy, days per severity level from when a snapshot first saw a patch "
        "missing, e.g. Critical=15,High=30",
    )
    report.set_defaults(run=_report, parser=report)

    from .sandbox.emulator import add_serve_arguments, serve

    serve_parser = commands.add_parser(
        "serve",
        help="run the local Systems Manager emulator (the sample or a synthetic fleet)",
        description=(
            "Serve a local Systems Manager endpoint on 127.0.0.1 until Ctrl-C. Point "
            "boto3 or the AWS CLI at the printed URL (AWS_ENDPOINT_URL or --endpoint-url)."
        ),
    )
    add_serve_arguments(serve_parser)
    serve_parser.set_defaults(run=serve, parser=serve_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``patchframe`` command; return its exit code.

    Parameters
    ----------
    argv
        The arguments after the program name; ``sys.argv[1:]`` when None.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:  # doctest: +ELLIPSIS
    ...     main(["report", "--sample", "--no-progress", "--top", "3", "--out", folder])
    Sample fleet: 13 nodes in 1 account and 1 region, 2,020 patch rows
    ...
    0
    """
    parser = _parser()
    try:
        args, unknown = parser.parse_known_args(argv)
        if args.command is None:
            parser.error("choose a command: report or serve")
        if unknown:  # named by the command's own parser, whose --help lists its options
            args.parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    except SystemExit as done:  # --help, --version, or a usage error already printed
        return done.code if isinstance(done.code, int) else 2
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except KeyboardInterrupt:
        _fail("interrupted")
        return 130
    except AWSRequestError as err:
        _fail(_failure(str(err), code=err.code))
        return 1
    except (PatchframeError, BotoCoreError, ClientError, OSError) as err:
        _fail(_one_line(str(err)) or type(err).__name__)
        return 1


def _fail(message: str) -> None:
    print(f"{_PROG}: error: {message}", file=sys.stderr)


def _usage_error(parser: argparse.ArgumentParser, message: str) -> int:
    """A bad option or argument: one line naming the command's help; exit code 2."""
    print(f"{parser.prog}: error: {message} (see '{parser.prog} --help')", file=sys.stderr)
    return 2


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _failure(message: str, *, code: str) -> str:
    """An AWS failure as one line, and the command's way out chosen by its error code.

    The loader's message is shown as it is, never read: what to suggest depends on
    ``code`` alone (``AWSRequestError.code``, or the errors frame's ``error_code``).
    """
    line = _one_line(message)
    if code == "NoCredentialsError":
        line += "; or try: patchframe report --sample"
    return line


# --- patchframe report -----------------------------------------------------------


def _given(*options: tuple[str, object]) -> list[str]:
    """The names of the (option name, value) pairs whose value is set."""
    return [name for name, value in options if value]


def _source_conflict(args: argparse.Namespace) -> str | None:
    """Why the options naming what to load do not go together, if they do not."""
    sample = "--sample-organization" if args.sample_organization else "--sample"
    given = _given(
        ("--profile", args.profiles),
        ("--region", args.regions),
        ("--all-regions", args.all_regions),
        ("--organization", args.organization),
    )
    if args.sample and args.sample_organization:
        return "--sample and --sample-organization are two samples: choose one"
    if (args.sample or args.sample_organization) and given:
        return f"{sample} loads a sample: leave out {' and '.join(given)}"
    if args.regions and args.all_regions:
        return "--region and --all-regions: choose one"
    organization_only = _given(
        ("--role-name", args.role_name), ("--unit", args.units), ("--skip", args.skip)
    )
    if organization_only and not args.organization:
        return f"{' and '.join(organization_only)} go with --organization"
    if args.organization and not args.role_name:
        return "--organization needs --role-name, the role to assume in each member account"
    if args.organization and len(args.profiles or ()) > 1:
        return "--organization takes one --profile, the management account's"
    return None


def _report(args: argparse.Namespace) -> int:
    """Load, print, write. AWS and patchframe errors not handled here, main() reports."""
    conflict = _source_conflict(args)
    if conflict is not None:
        return _usage_error(args.parser, conflict)
    if args.sla is not None and args.snapshot_store is None:
        message = "--sla needs --snapshot-store: breaches are worked out from the store's history"
        return _usage_error(args.parser, message)
    try:
        fleet = _load(args)
    except ValidationError as err:  # raised before any AWS call: a bad --profile or --region
        return _usage_error(args.parser, _one_line(str(err)))
    if not fleet.errors.empty and not fleet.nodes["patch_rows"].notna().any():
        _fail(_first_error(fleet))  # nothing loaded: no credentials, no access, ...
        return 1
    snapshot = None
    if args.snapshot_store is not None:
        from .history import save_snapshot

        # Saved first: the history is what a scheduled run is for; a report can be rewritten.
        snapshot = save_snapshot(fleet, args.snapshot_store)
    groups = None
    if args.by is not None:
        from .summary import compliance_by

        try:
            groups = compliance_by(fleet, by=args.by)
        except ValidationError as err:  # a column or tag key the fleet does not have
            return _usage_error(args.parser, f"--by {args.by}: {_one_line(str(err))}")
    source = "Sample fleet" if args.sample else "Fleet"
    if args.sample_organization or args.organization:
        source = "Sample organization" if args.sample_organization else "Organization"
    _print_overview(fleet, source=source, top=args.top)
    if groups is not None:
        _print_groups(groups, args.by)
    found = None
    if args.sla is not None:
        from .history import findings

        found = findings(args.snapshot_store)
        _print_breaches(args.snapshot_store, found, args.sla)
    # What was there before is what the report overwrites: said so, never silently.
    existing = {p.name for p in args.out.iterdir()} if args.out.is_dir() else set()
    try:
        written = _write_report(fleet, args.out, by=args.by, findings=found, sla=args.sla)
    except OSError as err:
        _fail(f"cannot write the report into {args.out}: {err.strerror or _one_line(str(err))}")
        return 1
    _print_written(args.out, written, replaced=existing)
    if snapshot is not None:
        print(f"Saved snapshot {snapshot.id} in {args.snapshot_store}")
    if not fleet.errors.empty:
        print(
            f"{_PROG}: warning: {counted(len(fleet.errors), 'error')} while loading, listed in "
            f"the Errors sheet; first: {_first_error(fleet)}",
            file=sys.stderr,
        )
    return 0


def _load(args: argparse.Namespace) -> Fleet:
    # None: patchframe's convention shows a bar only on a terminal or in a notebook.
    progress = None if args.progress else False
    if args.sample:
        from .sandbox.emulator import sample_client

        return load_fleet(client=sample_client(), progress=progress)
    regions = "enabled" if args.all_regions else args.regions
    if args.sample_organization:
        from .sandbox.emulator import Emulator
        from .sandbox.organization import synthetic_organization

        sample = synthetic_organization(5)
        with Emulator(organization=sample) as emulator:
            organization = Organization(sample.role_name, session=emulator.session())
            return load_fleet(organization=organization, regions="enabled", progress=progress)
    if args.organization:
        # No --profile: the Organization's default, boto3's default session.
        session = profile_session(args.profiles[0]) if args.profiles else None
        organization = Organization(
            args.role_name, units=args.units, skip=args.skip or (), session=session
        )
        return load_fleet(organization=organization, regions=regions, progress=progress)
    return load_fleet(profiles=args.profiles, regions=regions, progress=progress)


def _first_error(fleet: Fleet) -> str:
    first = fleet.errors.iloc[0]
    return _failure(str(first["message"]), code=str(first["error_code"]))


def _print_overview(fleet: Fleet, *, source: str, top: int) -> None:
    """The figures, the accounts when several, then the most widespread missing patches."""
    from .summary import top_missing

    figures = fleet.figures()
    where = (
        f"{counted(figures['accounts'], 'account')} and {counted(figures['regions'], 'region')}"
    )
    print(
        f"{source}: {counted(figures['nodes'], 'node')} in {where}, "
        f"{figures['patches']:,} patch rows"
    )
    compliance = fleet.nodes["compliance"].astype("str")
    rows = [
        ("non-compliant nodes", figures["non_compliant_nodes"]),
        ("compliant nodes", int((compliance == "COMPLIANT").sum())),
        ("never scanned", int((compliance == "NOT_SCANNED").sum())),
        ("failed to load", figures["failed_nodes"]),
        ("errors", figures["errors"]),
    ]
    for label, value in rows:
        print(f"  {label:<20} {value:>7,}")
    if accounts_worth_listing(fleet.accounts):
        print(f"\n{_accounts_table(fleet.accounts)}")
    missing = top_missing(fleet.patches, top=top)
    if missing.empty:
        print("\nNo patch is missing or failed on any node.")
        return
    print(f"\nTop {len(missing)} missing patches (MISSING or FAILED), by nodes affected:")
    print(_table(missing))


def _accounts_table(accounts: pd.DataFrame) -> str:
    """One line per account: name, id, state, nodes, non-compliant and regions, or its error."""

    def texts(column: str) -> list[str]:
        return accounts[column].astype("object").fillna("").astype(str).tolist()

    names, states, errors = texts("account_name"), texts("state"), texts("error_code")
    width = max(len("account"), *(len(n) for n in names))
    state_width = max(len("state"), *(len(s) for s in states))
    head = (
        f"  {'account':<{width}}  {'id':<12}  {'state':<{state_width}}  "
        f"{'nodes':>5}  {'non-compl.':>10}"
    )
    lines = [head + "  regions"]
    rows = zip(
        names,
        accounts["account_id"].astype(str),
        states,
        accounts["loaded"].tolist(),
        accounts["nodes"].fillna(0).astype(int).tolist(),
        accounts["non_compliant_nodes"].fillna(0).astype(int).tolist(),
        accounts["regions"].tolist(),
        errors,
        strict=True,
    )
    for name, account_id, state, loaded, nodes, non_compliant, regions, error in rows:
        if loaded:
            counts = f"{nodes:>5,}  {non_compliant:>10,}  {regions}"
        else:
            counts = f"{'-':>5}  {'-':>10}  " + (f"failed: {error}" if error else "not loaded")
        lines.append(f"  {name:<{width}}  {account_id:<12}  {state:<{state_width}}  {counts}")
    return "\n".join(lines)


def _print_groups(groups: pd.DataFrame, by: str) -> None:
    """Compliance per group, worst first: the figures an owner acts on."""
    from ._nodes import DEFAULT_STALE_DAYS

    name = by.removeprefix("tag:")
    print(f"\nBy {name}, most non-compliant nodes first:")
    labels = groups[by].astype("str").tolist()
    width = max(len(name), *(len(label) for label in labels))
    columns = {
        "nodes": "nodes",
        "non-compliant": "non_compliant",
        "never scanned": "not_scanned",
        "stale": "stale",
        "unreachable": "unreachable",
        "compliant": "share_compliant",
        "missing": "missing_patches",
        "critical": "missing_critical",
    }
    lines = [f"  {name:<{width}}" + "".join(f"  {head}" for head in columns)]
    for i, label in enumerate(labels):
        cells = [
            f"{groups[column].iloc[i]:.0%}"
            if column == "share_compliant"
            else f"{int(groups[column].iloc[i]):,}"
            for column in columns.values()
        ]
        lines.append(
            f"  {label:<{width}}"
            + "".join(f"  {c:>{len(h)}}" for h, c in zip(columns, cells, strict=True))
        )
    print("\n".join(lines))
    print(
        f"  stale: never scanned, or last scanned over {DEFAULT_STALE_DAYS} days before the "
        "load; unreachable: ping status ConnectionLost or Inactive"
    )


def _table(missing: pd.DataFrame) -> str:
    """The top-missing frame as a small fixed-width table fitted to the terminal."""
    ids = missing["kb_id"].astype("str").tolist()
    levels = missing["severity_level"].astype("str").fillna("").tolist()
    titles = missing["title"].astype("str").fillna("").tolist()
    id_width = max(len("patch"), *(len(i) for i in ids))
    head = f"  {'patch':<{id_width}}  {'nodes':>5}  {'severity':<11}  "
    room = max(40, shutil.get_terminal_size((100, 24)).columns - len(head) - 1)
    lines = [head + "title"]
    for kb, nodes, level, title in zip(ids, missing["nodes"], levels, titles, strict=True):
        if len(title) > room:
            title = title[: room - 1] + "…"
        lines.append(f"  {kb:<{id_width}}  {nodes:>5,}  {level:<11}  {title}")
    return "\n".join(lines)


def _print_breaches(store: str, found: pd.DataFrame, policy: dict[str, pd.Timedelta]) -> None:
    """Findings under the policy by severity, from every snapshot in the store."""
    from .history import list_snapshots
    from .summary import sla_breaches

    terms = ", ".join(f"{level} {counted(span.days, 'day')}" for level, span in policy.items())
    snapshots = list_snapshots(store)["time"]
    span = f"{snapshots.iloc[0]:%Y-%m-%d} to {snapshots.iloc[-1]:%Y-%m-%d}"
    table = sla_breaches(found, policy=policy)
    breached = int(table["breached"].sum())
    print(f"\nRemediation SLA ({terms}): {counted(breached, 'open finding')} past due")
    print(
        f"  from {counted(len(snapshots), 'snapshot')}, {span}; the clock starts when first seen"
    )
    if table.empty:
        return
    head = f"  {'severity':<11}  {'open':>6}  {'breached':>8}  {'fixed late':>10}  worst overdue"
    lines = [head]
    rows = zip(
        table["severity_level"].astype("str"),
        (table["within"] + table["breached"]).tolist(),
        table["breached"].tolist(),
        table["fixed_late"].tolist(),
        table["max_overdue"].dt.days.tolist(),
        strict=True,
    )
    for level, still_open, late, fixed_late, overdue in rows:
        worst = counted(overdue, "day") if late else "-"
        lines.append(f"  {level:<11}  {still_open:>6,}  {late:>8,}  {fixed_late:>10,}  {worst}")
    print("\n".join(lines))


_CHARTS: dict[str, tuple[str, str]] = {
    # file name: (plots function, the Fleet frame it draws)
    "states-by-node.png": ("states_by_node", "patches"),
    "severity-by-state.png": ("severity_state_heatmap", "patches"),
    "top-cves.png": ("top_cves", "patches"),
    "compliance-by-platform.png": ("compliance_by_platform", "nodes"),
    "install-timeline.png": ("install_timeline", "patches"),
}


def _write_report(
    fleet: Fleet,
    out: Path,
    *,
    by: str | None = None,
    findings: pd.DataFrame | None = None,
    sla: dict[str, pd.Timedelta] | None = None,
) -> list[tuple[str, str]]:
    """Write the report files into ``out``; return (file name, what it is) pairs.

    With the store's findings, the workbook gains its Aging sheet under the SLA policy.
    """
    from .export import EXCEL_SHEETS, to_compliance_csv, to_excel

    out.mkdir(parents=True, exist_ok=True)
    written = []
    to_excel(fleet, out / WORKBOOK, by=by, findings=findings, sla_policy=sla)
    sheets = ", ".join(EXCEL_SHEETS)
    if accounts_worth_listing(fleet.accounts):
        sheets += "; Accounts"
    if findings is not None:
        sheets += "; Aging"
    if by is not None:
        sheets += f"; Summary by {by.removeprefix('tag:')}"
    written.append((WORKBOOK, "workbook: " + sheets))
    to_compliance_csv(fleet, out / SUMMARY_CSV)
    written.append((SUMMARY_CSV, "one row per node, in the AWS console's report columns"))
    for name in _write_charts(fleet, out):
        written.append((name, "chart"))
    return written


def _write_charts(fleet: Fleet, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display is needed, no window opens
    import matplotlib.pyplot as plt

    from . import plots

    names = []
    for name, (function, frame) in _CHARTS.items():
        draw: Callable[..., Any] = getattr(plots, function)
        ax = draw(getattr(fleet, frame))
        try:
            ax.figure.savefig(out / name, dpi=110)
        finally:
            plt.close(ax.figure)
        names.append(name)
    return names


def _print_written(out: Path, written: list[tuple[str, str]], *, replaced: set[str]) -> None:
    print(f"\nWrote {counted(len(written), 'file')} to {out.resolve()}:")
    width = max(len(name) for name, _ in written)
    for name, what in written:
        print(f"  {name:<{width}}  {what}")
    overwritten = [name for name, _ in written if name in replaced]
    if overwritten:
        print(f"Replaced {counted(len(overwritten), 'existing file')}: {', '.join(overwritten)}")
