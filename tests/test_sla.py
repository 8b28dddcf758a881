"""Remediation SLAs: statuses, due dates, ages, buckets and times to fix against hand-computed
values, the release-date clock and its fallback to first_seen, time zones, policy checks."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from patchframe import summary
from patchframe.exceptions import ColumnsError, ValidationError
from patchframe.summary import aging, sla, sla_breaches, time_to_fix

DAY = pd.Timedelta(days=1)


def utc(*texts: str | None) -> pd.Series:
    return pd.Series(pd.to_datetime(list(texts), utc=True))


def hand_findings() -> pd.DataFrame:
    """Nine findings; the latest time in them, 2024-07-01, is now."""
    return pd.DataFrame(
        {
            "instance_id": [f"i-{n:017x}" for n in range(9)],
            "severity_level": pd.Categorical(
                [
                    "Critical",
                    "Critical",
                    "High",
                    "High",
                    "Medium",
                    "Unspecified",
                    "Critical",
                    "Low",
                    "Critical",
                ]
            ),
            "platform_name": ["Windows", "Linux", "Windows", "Linux", "Linux"] + ["Windows"] * 4,
            "first_seen": utc(
                "2024-06-01",
                "2024-06-20",
                "2024-06-01",
                "2024-05-01",
                "2024-06-01",
                "2024-06-01",
                "2024-06-16",
                "2024-01-01",
                "2024-06-24",
            ),
            "last_seen": utc(
                "2024-07-01",
                "2024-07-01",
                "2024-06-22",
                "2024-06-01",
                "2024-07-01",
                "2024-07-01",
                "2024-07-01",
                "2024-06-08",
                "2024-06-24",
            ),
            "resolved_at": utc(
                None,
                None,
                "2024-06-29",
                "2024-06-08",
                None,
                None,
                None,
                "2024-06-15",
                "2024-07-01",
            ),
            "resolution": pd.Categorical(
                [
                    *("open", "open", "installed", "installed", "open", "open", "open"),
                    *("node gone", "installed"),
                ]
            ),
            "open": [True, True, False, False, True, True, True, False, False],
        }
    )


# (clock, due, age in days, overdue in days or None, status or None), by hand.
EXPECTED_FIRST_SEEN = [
    ("first_seen", "2024-06-16", 30, 15, "breached"),
    ("first_seen", "2024-07-05", 11, 0, "within"),
    ("first_seen", "2024-07-01", 28, 0, "fixed in time"),
    ("first_seen", "2024-05-31", 38, 8, "fixed late"),
    ("first_seen", "2024-08-30", 30, 0, "within"),  # Medium: 90 days
    ("first_seen", None, 30, None, None),  # Unspecified: no SLA in the policy
    ("first_seen", "2024-07-01", 15, 0, "within"),  # due this very moment: still within
    ("first_seen", "2024-06-29", 166, 0, "fixed in time"),  # Low: 180 days, 2024 a leap year
    ("first_seen", "2024-07-09", 7, 0, "fixed in time"),
]


def rows(frame: pd.DataFrame) -> list[tuple[object, ...]]:
    return [
        (
            None if pd.isna(r.clock) else r.clock,
            None if pd.isna(r.due) else f"{r.due:%Y-%m-%d}",
            r.age / DAY,
            None if pd.isna(r.overdue) else r.overdue / DAY,
            None if pd.isna(r.status) else r.status,
        )
        for r in frame.itertuples()
    ]


def test_statuses_due_dates_and_ages_by_hand() -> None:
    found = hand_findings()
    dated = sla(found)
    assert rows(dated) == EXPECTED_FIRST_SEEN
    assert list(dated.columns) == [
        *found.columns,
        "clock",
        "clock_start",
        "due",
        "age",
        "overdue",
        "status",
    ]
    assert dated[found.columns].equals(found)
    assert str(dated["due"].dtype) == "datetime64[ns, UTC]"
    assert dated["status"].cat.categories.tolist() == [
        "within",
        "breached",
        "fixed in time",
        "fixed late",
    ]


def test_now_is_the_time_of_the_data_unless_given() -> None:
    found = hand_findings()
    later = sla(found, now="2024-07-10")
    assert later.loc[1, "status"] == "breached"
    assert later.loc[1, "overdue"] == 5 * DAY
    assert later.loc[0, "age"] == 39 * DAY
    # Closed findings are aged to their resolution, whatever now is.
    assert later.loc[3, "age"] == 38 * DAY
    # A naive now counts as UTC; an aware one is converted.
    east = dt.datetime(2024, 7, 10, 2, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert sla(found, now=east)["age"].equals(later["age"])


def test_the_release_clock_falls_back_to_first_seen_and_says_so() -> None:
    found = hand_findings()
    found["release_date"] = pd.Series(
        [
            pd.Timestamp("2024-05-10T20:00", tz="America/New_York"),  # 2024-05-11 00:00 UTC
            None,
            pd.Timestamp("2024-05-20T00:00", tz="UTC"),
        ]
        + [None] * 6,
        dtype="datetime64[ns, America/New_York]",
    )
    dated = sla(found, clock="release")
    expected = list(EXPECTED_FIRST_SEEN)
    expected[0] = ("release", "2024-05-26", 51, 36, "breached")
    expected[2] = ("release", "2024-06-19", 40, 10, "fixed late")
    assert rows(dated) == expected
    assert dated.loc[0, "clock_start"] == pd.Timestamp("2024-05-11", tz="UTC")
    assert str(dated["clock_start"].dtype) == "datetime64[ns, UTC]"
    # No approval dates at all: every row falls back.
    assert rows(sla(found, clock="approval")) == EXPECTED_FIRST_SEEN


def test_naive_release_dates_count_as_utc() -> None:
    found = hand_findings().assign(release_date=pd.Timestamp("2024-05-11"))
    dated = sla(found, clock="release")
    assert (dated["clock"] == "release").all()
    assert dated.loc[0, "due"] == pd.Timestamp("2024-05-26", tz="UTC")


def test_a_patches_frame_needs_release_dates_and_now(sample_patches: pd.DataFrame) -> None:
    with pytest.raises(ColumnsError, match="first_seen"):
        sla(sample_patches)
    with pytest.raises(ValidationError, match="now"):
        sla(sample_patches, clock="release")
    unknown = sla(sample_patches, clock="release", now="2024-06-15")
    assert len(unknown) == 271  # the MISSING and FAILED rows
    assert unknown["clock"].isna().all() and unknown["status"].isna().all()
    dated = sample_patches.assign(release_date=pd.Timestamp("2024-06-01", tz="UTC"))
    by_release = sla(dated, clock="release", now="2024-06-20")
    levels = by_release["severity_level"].astype("str")
    assert set(by_release.loc[levels == "Critical", "status"]) == {"breached"}
    assert set(by_release.loc[levels == "High", "status"]) == {"within"}
    assert (by_release["age"] == 19 * DAY).all()


def test_breaches_by_severity_and_by_a_node_column() -> None:
    found = hand_findings()
    table = sla_breaches(found)
    assert table["severity_level"].astype("str").tolist() == ["Critical", "High", "Medium", "Low"]
    counts = ["findings", "within", "breached", "fixed_in_time", "fixed_late"]
    assert table[counts].to_numpy().tolist() == [
        [4, 2, 1, 1, 0],
        [2, 0, 0, 1, 1],
        [1, 1, 0, 0, 0],
        [1, 0, 0, 1, 0],
    ]
    assert table["max_overdue"].tolist() == [15 * DAY, 0 * DAY, 0 * DAY, 0 * DAY]
    assert (table[counts].dtypes == "int64").all()

    by_platform = sla_breaches(found, by="platform_name", policy={"critical": 15, "High": 30})
    assert by_platform["platform_name"].tolist() == ["Linux", "Windows"]
    assert by_platform[counts].to_numpy().tolist() == [[2, 1, 0, 0, 1], [4, 1, 1, 2, 0]]
    whole = sla_breaches(found, by=None)
    assert whole[counts].to_numpy().tolist() == [[8, 3, 1, 3, 1]]


def test_time_to_fix_counts_installs_only() -> None:
    found = hand_findings()
    table = time_to_fix(found)
    assert table["severity_level"].astype("str").tolist() == ["Critical", "High"]
    assert table["fixed"].tolist() == [1, 2]
    assert table["median"].tolist() == [7 * DAY, 33 * DAY]
    assert table["p90"].tolist() == [7 * DAY, 37 * DAY]  # 28 + 0.9 x (38 - 28)


def test_time_to_fix_by_month_by_hand() -> None:
    found = hand_findings()
    monthly = time_to_fix(found, freq="M")
    got = [
        (f"{r.period:%Y-%m}", str(r.severity_level), r.fixed, r.median / DAY)
        for r in monthly.itertuples()
    ]
    assert got == [("2024-06", "High", 2, 33), ("2024-07", "Critical", 1, 7)]
    weekly = time_to_fix(found, freq="W", by=None)
    assert [f"{p:%Y-%m-%d %a}" for p in weekly["period"]] == [
        "2024-06-03 Mon",
        "2024-06-24 Mon",
        "2024-07-01 Mon",
    ]
    assert time_to_fix(found.iloc[:0], by=None).empty
    from_release = time_to_fix(
        found.assign(release_date=pd.Timestamp("2024-04-01", tz="UTC")), clock="release"
    )
    assert from_release["median"].tolist() == [91 * DAY, 78.5 * DAY]


def test_aging_buckets_by_hand() -> None:
    now = pd.Timestamp("2024-07-01", tz="UTC")
    ages = [
        pd.Timedelta(days=7, hours=23),  # 7 whole days
        8 * DAY,
        15 * DAY,
        16 * DAY,
        30 * DAY,
        31 * DAY,
        90 * DAY,
        91 * DAY,
        180 * DAY,
        181 * DAY,
        -2 * DAY,  # a clock that starts after now: the youngest bucket
    ]
    found = pd.DataFrame(
        {
            "severity_level": ["Critical"] * 10 + ["Low"],
            "first_seen": [now - age for age in ages],
            "last_seen": [now] * len(ages),
            "resolved_at": pd.Series([pd.NaT] * len(ages), dtype="datetime64[ns, UTC]"),
            "open": True,
        }
    )
    closed = found.iloc[:1].assign(open=False, resolved_at=now)
    table = aging(pd.concat([found, closed], ignore_index=True))
    assert table.index.tolist() == ["0-7", "8-15", "16-30", "31-90", "91-180", ">180"]
    assert table.columns.tolist() == ["Critical", "High", "Medium", "Low", "Unspecified"]
    assert table["Critical"].tolist() == [1, 2, 2, 2, 2, 1]
    assert table["Low"].tolist() == [1, 0, 0, 0, 0, 0]
    assert table[["High", "Medium", "Unspecified"]].sum().sum() == 0
    assert (table.dtypes == "int64").all()


def test_aging_of_the_hand_findings_and_of_nothing() -> None:
    table = aging(hand_findings())
    assert table.loc["8-15"].tolist() == [2, 0, 0, 0, 0]  # rows 1 and 6
    assert table.loc["16-30"].tolist() == [1, 0, 1, 0, 1]  # rows 0, 4, 5
    assert table.to_numpy().sum() == 5
    nothing = aging(hand_findings().iloc[:0], now="2024-07-01")
    assert nothing.shape == (6, 5) and nothing.to_numpy().sum() == 0


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"Important": 30}, "'Important' is not a severity level; the levels are Critical, High"),
        ({"Critical": -1}, "negative"),
        ({"Critical": True}, "not a number of days"),
        ({"Critical": "15"}, "not a number of days"),
        ({"Critical": 15, "critical": 10}, "given twice"),
        ([("Critical", 15)], "mapping"),
    ],
)
def test_policies_are_checked(policy: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        sla(hand_findings(), policy=policy)  # type: ignore[arg-type]


def test_policy_levels_any_case_days_or_timedeltas() -> None:
    found = hand_findings()
    same = sla(found, policy={"critical": dt.timedelta(days=15), "HIGH": 30.0})
    assert same.loc[[0, 2, 3], "status"].tolist() == ["breached", "fixed in time", "fixed late"]
    assert same["status"].isna().sum() == 3  # Medium, Unspecified, Low: no SLA now


def test_bad_clock_and_bad_input() -> None:
    with pytest.raises(ValidationError, match="'first_seen', 'release', 'approval'"):
        sla(hand_findings(), clock="installed")  # type: ignore[arg-type]
    with pytest.raises(ColumnsError, match="neither"):
        sla(pd.DataFrame({"x": [1]}))
    with pytest.raises(ColumnsError, match="'team'"):
        sla_breaches(hand_findings(), by="team")
    with pytest.raises(ValidationError, match="freq"):
        time_to_fix(hand_findings(), freq="Y")  # type: ignore[arg-type]


def test_summary_re_exports_the_sla_functions() -> None:
    for name in ("sla", "sla_breaches", "time_to_fix", "aging"):
        assert name in summary.__all__
        assert getattr(summary, name).__module__ == "patchframe._sla"
