"""with_release_dates on hand-built frames: Windows by KB, Linux by title or kb_id, NaT counted."""

from __future__ import annotations

import pandas as pd
import pytest

import patchframe as pf

WIN_ID = "8f1c0bde-0000-4000-8000-000000000001"
ZLIB = "zlib.x86_64:0:1.2.7-21.amzn2.0.2"


def utc(*days: str | None) -> pd.Series:
    return pd.Series(pd.to_datetime(list(days), utc=True, format="ISO8601"))


@pytest.fixture
def catalog() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "baseline_id": ["pb-0aaaaaaaaaaaaaaaa", "pb-0bbbbbbbbbbbbbbbb", None],
            "patch_id": [WIN_ID, WIN_ID, ZLIB],
            "kb_id": ["KB5039227", "KB5039227", None],
            "title": ["2024-06 Cumulative Update", "2024-06 Cumulative Update", ZLIB],
            "release_date": utc("2024-06-11T18:00", "2024-06-11T18:00", "2024-05-02"),
            "approval_date": utc("2024-06-18T18:00", "2024-06-25T18:00", None),
        }
    ).astype({"baseline_id": "category", "kb_id": "category", "title": "category"})


@pytest.fixture
def patches() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "platform_type": ["Windows", "Windows", "Windows", "Linux", "Linux", "Linux"],
            "baseline_id": [
                "pb-0aaaaaaaaaaaaaaaa",
                "pb-0bbbbbbbbbbbbbbbb",
                "pb-0cccccccccccccccc",
                "pb-0dddddddddddddddd",
                "pb-0dddddddddddddddd",
                "pb-0dddddddddddddddd",
            ],
            "kb_id": [
                "KB5039227",
                "KB5039227",
                "KB5039227",
                "zlib-1.2.7-21.amzn2.0.2.x86_64",
                "zlib-1.2.7-21.amzn2.0.2.x86_64",
                "curl-8.5.0-1.amzn2.x86_64",
            ],
            # The service leaves Title empty on some rows (InstalledOther, NotApplicable).
            "title": [None, "2024-06 Cumulative Update", "x", ZLIB, None, "curl.x86_64:0:8.5.0-1"],
        }
    ).astype("category")


def test_windows_rows_join_on_kb_and_take_their_own_baselines_approval(
    patches: pd.DataFrame, catalog: pd.DataFrame
) -> None:
    dated = pf.with_release_dates(patches, catalog)
    assert list(dated["release_date"][:3]) == list(utc(*["2024-06-11T18:00"] * 3))
    # Own baseline's approval; a baseline the catalog lacks gets the earliest.
    assert list(dated["approval_date"][:3]) == list(
        utc("2024-06-18T18:00", "2024-06-25T18:00", "2024-06-18T18:00")
    )


def test_linux_rows_join_on_title_else_kb_id_and_unmatched_rows_are_counted(
    patches: pd.DataFrame, catalog: pd.DataFrame
) -> None:
    dated = pf.with_release_dates(patches, catalog)
    assert list(dated["release_date"][3:]) == list(utc("2024-05-02", "2024-05-02", None))
    assert dated["approval_date"][3:].isna().all()
    assert dated.attrs["unmatched_release_dates"] == 1
    assert str(dated["release_date"].dt.tz) == "UTC"
    pd.testing.assert_frame_equal(dated[patches.columns], patches)


def test_without_platform_type_kb_numbers_still_join(
    patches: pd.DataFrame, catalog: pd.DataFrame
) -> None:
    dated = pf.with_release_dates(patches.drop(columns="platform_type"), catalog)
    assert dated["release_date"].notna().sum() == 5


def test_an_empty_catalog_leaves_every_row_undated(
    patches: pd.DataFrame, catalog: pd.DataFrame
) -> None:
    dated = pf.with_release_dates(patches, catalog.iloc[:0])
    assert dated["release_date"].isna().all()
    assert dated.attrs["unmatched_release_dates"] == len(patches)


def test_missing_columns_are_named(patches: pd.DataFrame, catalog: pd.DataFrame) -> None:
    with pytest.raises(pf.ColumnsError, match="release_date"):
        pf.with_release_dates(patches, catalog.drop(columns="release_date"))
    with pytest.raises(pf.ColumnsError, match="title"):
        pf.with_release_dates(patches.drop(columns="title"), catalog)
    with pytest.raises(pf.ValidationError):
        pf.with_release_dates("patches", catalog)  # type: ignore[arg-type]
