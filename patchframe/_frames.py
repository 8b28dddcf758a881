"""Building blocks shared by the analysis modules: column checks, states, levels, times.

The analysis layer (filters, summaries, plots, history, export) decides on the
categories of the contract's categorical columns, a few dozen strings even in a
large fleet, never on each row: a state's spelling, a severity word, a CVE list.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterable
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ._schema import PATCH_DTYPES, SEVERITY_LEVELS, STATES, normalise_state
from .exceptions import ColumnsError, ValidationError

Mask = npt.NDArray[np.bool_]
Codes = npt.NDArray[np.intp]
#: What the functions taking a point in time accept.
TimeLike = str | dt.date | np.datetime64
#: NaT as an int64, as ``datetime64[ns]`` values viewed as integers show it.
NAT = int(np.iinfo(np.int64).min)
#: The contract's ordered severity scale, Unspecified < ... < Critical.
LEVEL_DTYPE: pd.CategoricalDtype = PATCH_DTYPES["severity_level"]


def require_frame(df: object, *, needed_by: str, argument: str = "df") -> None:
    """Raise ValidationError unless ``argument`` of ``needed_by`` is a DataFrame."""
    if not isinstance(df, pd.DataFrame):
        raise ValidationError(
            f"{needed_by}: {argument} is a {type(df).__name__}, but a pandas DataFrame was "
            "expected, such as fleet.patches or fleet.nodes from load_fleet"
        )


def require_columns(
    df: pd.DataFrame, columns: Iterable[str], *, needed_by: str, argument: str = "df"
) -> None:
    """Raise ValidationError unless ``df`` is a DataFrame, ColumnsError naming the columns
    ``needed_by`` wants that it lacks."""
    require_frame(df, needed_by=needed_by, argument=argument)
    lacking = [c for c in columns if c not in df.columns]
    if lacking:
        raise ColumnsError(
            f"{needed_by} needs column(s) {', '.join(map(repr, lacking))}, which the frame "
            f"lacks; it has: {', '.join(map(str, df.columns)) or 'no columns'}"
        )


def category_codes(
    series: pd.Series[Any], rows: npt.NDArray[np.intp] | None = None
) -> tuple[npt.NDArray[np.intp], pd.Index]:
    """Category codes (-1 for NA), of ``rows`` only if given, and the categories of a
    column, categorical or not."""
    if not isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype("category")
    codes = series.cat.codes.to_numpy()
    return (codes if rows is None else codes[rows]).astype(np.intp), series.cat.categories


def pick_rows(series: pd.Series[Any], keep: Callable[[Any], bool]) -> Mask:
    """Rows whose category satisfies ``keep``, deciding once per category, never per row."""
    codes, categories = category_codes(series)
    table = np.fromiter((keep(c) for c in categories), np.bool_, len(categories))
    return np.append(table, False)[codes]  # code -1 (NA) picks the appended False


def state_codes(
    series: pd.Series[Any], rows: npt.NDArray[np.intp] | None = None
) -> tuple[npt.NDArray[np.intp], list[str]]:
    """Codes of the state column and the model's spelling of each of its categories."""
    codes, categories = category_codes(series, rows)
    return codes, [normalise_state(str(c)) for c in categories]


def level_codes(
    series: pd.Series[Any], rows: npt.NDArray[np.intp] | None = None
) -> npt.NDArray[np.intp]:
    """Each row's position on SEVERITY_LEVELS (0 Unspecified ... 4 Critical), -1 for NA."""
    codes, categories = category_codes(series, rows)
    position = [_level_index(str(c)) for c in categories]
    return np.array([*position, -1], dtype=np.intp)[codes]


def _level_index(level: str) -> int:
    by_lower = {name.lower(): i for i, name in enumerate(SEVERITY_LEVELS)}
    return by_lower.get(level.lower(), 0)  # the contract's dtype holds only these five


def model_states(*columns: pd.Series[Any]) -> list[pd.Series[Any]]:
    """State columns on one ordered category in the model's spelling (``InstalledOther``
    becomes ``INSTALLED_OTHER``): the model's 8 states in its order, then any state
    nobody knew yet, in order of first mention. Spellings are fixed per category."""
    named = [c.astype("category").map(normalise_state, na_action="ignore") for c in columns]
    seen = (
        n.cat.categories if isinstance(n.dtype, pd.CategoricalDtype) else n.dropna().unique()
        for n in named
    )
    unknown = dict.fromkeys(str(s) for values in seen for s in values if s not in STATES)
    dtype = pd.CategoricalDtype([*STATES, *unknown], ordered=True)
    return [n.astype(dtype) for n in named]


def severity_levels(series: pd.Series[Any]) -> pd.Series[Any]:
    """The column on the contract's ordered severity scale, its words matched without
    regard to case (any other word is Unspecified), NA kept."""
    if series.dtype == LEVEL_DTYPE:
        return series
    return (
        series.astype("category")
        .map(lambda c: SEVERITY_LEVELS[_level_index(str(c))], na_action="ignore")
        .astype(LEVEL_DTYPE)
    )


def utc_times(series: pd.Series[Any]) -> pd.Series[Any]:
    """Times as ``datetime64[ns, UTC]``; naive ones count as UTC."""
    times = pd.to_datetime(series)
    times = times.dt.tz_localize("UTC") if times.dt.tz is None else times.dt.tz_convert("UTC")
    return times.dt.as_unit("ns")


def cve_lists(lists: pd.Series[Any]) -> pd.DataFrame:
    """One row per distinct ``cve_ids`` value in ``lists`` and CVE id it names: columns
    ``cve_ids`` (the value, in its own dtype, to merge on) and ``cve_id``.

    Only the distinct lists are split, a few thousand strings even for a million rows.
    """
    table = pd.DataFrame({"cve_ids": lists.dropna().unique()})
    table["cve_id"] = table["cve_ids"].astype("str").str.split(",")
    table = table.explode("cve_id", ignore_index=True)
    table["cve_id"] = table["cve_id"].str.strip().str.upper()
    return table[table["cve_id"] != ""].drop_duplicates(ignore_index=True)


def state_mask(df: pd.DataFrame, states: Collection[str]) -> Mask:
    codes, names = state_codes(df["state"])
    table = np.array([*(n in states for n in names), False], dtype=np.bool_)
    return table[codes]


def utc_nanoseconds(series: pd.Series[Any]) -> npt.NDArray[np.int64]:
    """Nanoseconds since the epoch, UTC, NaT as numpy's NaT integer; naive counts as UTC."""
    times = pd.DatetimeIndex(series)
    if times.tz is not None:
        times = times.tz_convert("UTC").tz_localize(None)
    return times.as_unit("ns").to_numpy().view(np.int64)


def utc_timestamp(value: object, *, name: str) -> pd.Timestamp:
    """A point in time as an aware UTC Timestamp; naive values count as UTC."""
    if not isinstance(value, str | dt.date | np.datetime64):
        raise ValidationError(
            f"{name} {value!r} is not a point in time: expected a datetime, a date, "
            "a pandas Timestamp, a numpy datetime64 or ISO text such as '2024-05-01'"
        )
    try:
        stamp = pd.Timestamp(value)
    except ValueError as err:
        raise ValidationError(
            f"{name} {value!r} is not a date or time: expected ISO text such as "
            "'2024-05-01' or '2024-05-01T12:00:00Z'"
        ) from err
    if pd.isna(stamp):
        raise ValidationError(f"{name} {value!r} is not a point in time: NaT is not allowed")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def nanoseconds(stamp: pd.Timestamp) -> int:
    return int(stamp.as_unit("ns").value)


def string_arguments(values: tuple[object, ...], *, what: str, example: str) -> list[str]:
    if not values:
        raise ValidationError(f"no {what} given: pass at least one, e.g. {example}")
    for value in values:
        if not isinstance(value, str) or not value:
            raise ValidationError(
                f"{what} {value!r} is not a non-empty string: pass each as its own "
                f"argument, e.g. {example}"
            )
    return list(map(str, values))


def patch_state(value: str, known: Collection[str]) -> str:
    state = normalise_state(value)
    if state not in known:
        raise ValidationError(
            f"state {value!r} is not a patch state: expected one of {', '.join(known)} "
            "(CamelCase such as 'InstalledOther' works too)"
        )
    return state


def split_cves(text: str) -> set[str]:
    return {part.strip().upper() for part in text.split(",")}
