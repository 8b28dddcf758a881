"""Parquet round trips that keep every dtype, and files from elsewhere read as pandas does."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from export_frames import patches, record

from patchframe._fleet import Fleet
from patchframe._schema import UnknownStateWarning, empty_patches
from patchframe.exceptions import ValidationError
from patchframe.export import read_parquet, to_parquet


def test_parquet_round_trips_the_fleet(tmp_path: Path, sample_fleet_frames: Fleet) -> None:
    for name in ("patches", "nodes", "errors"):
        frame = getattr(sample_fleet_frames, name)
        back = read_parquet(to_parquet(frame, tmp_path / f"{name}.parquet"))
        pd.testing.assert_frame_equal(back, frame)


def test_parquet_keeps_every_dtype(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownStateWarning)
        frame = patches(
            {
                "i-00000001": [
                    record("KB1", "Missing", Severity="Critical", InstalledTime=1.5e9),
                    record("KB2", "BrandNewState"),  # an unknown state: an extra category
                ],
                "i-00000002": [record("KB3", "Installed", InstalledTime=1.7e9 + 0.123456)],
            },
            platform_name=["Ubuntu", None],
        )
    assert frame["classification"].isna().all()  # categories of no value at all
    for case in (frame, frame.iloc[[2, 0]], frame.iloc[:0], empty_patches()):
        back = read_parquet(to_parquet(case, tmp_path / "case.parquet"))
        pd.testing.assert_frame_equal(back, case)
        assert list(back["state"].cat.categories)[-1] == list(case["state"].cat.categories)[-1]


def test_parquet_from_elsewhere_reads_as_pandas_does(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": pd.Categorical(["x", None])})
    frame.to_parquet(tmp_path / "plain.parquet")
    pd.testing.assert_frame_equal(
        read_parquet(tmp_path / "plain.parquet"), pd.read_parquet(tmp_path / "plain.parquet")
    )
    with pytest.raises(ValidationError, match="expected a DataFrame"):
        to_parquet(np.arange(3), tmp_path / "x.parquet")  # type: ignore[arg-type]
