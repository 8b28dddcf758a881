"""A million-row workbook: to_excel's time and peak memory beside XlsxWriter's floor.

Run it with ``python benchmarks/workbook.py`` (``--rows`` for a smaller one).

The fleet is the bundled sample tiled until it has the rows asked for, each copy
with its own instance ids. It is written once to Parquet; each measurement then
runs in a fresh child process that reads it back, so that the peak resident
memory (``ru_maxrss``) is that measurement's alone:

- **XlsxWriter's floor**: the same cells (Patches, Missing and Failed, CVEs and
  Nodes) written with plain ``worksheet.write_row`` in ``constant_memory`` mode,
  the clock stopped while each chunk of values is made ready: what no writer
  built on XlsxWriter can beat;
- **to_excel**: ``patchframe.to_excel`` on the Fleet, everything included
  (the Summary, the node table, the colours, the widths, the print settings).

The targets (issue 16): to_excel within 1.3x of the floor's time, under 1 GB of
peak memory.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from child_process import peak_mb, run_child

import patchframe as pf

ROWS = 1_000_000
TARGET_RATIO = 1.3
TARGET_PEAK_MB = 1024.0
_EXCEL_EPOCH = 25_569.0  # days from Excel's day 0 to 1970-01-01
_DAY_NS = 86_400e9
_PARTS = ("patches", "nodes", "errors")
_CHUNK_ROWS = 50_000


def big_fleet(rows: int) -> pf.Fleet:
    """The sample fleet tiled to exactly ``rows`` patch rows, ids unique per copy."""
    sample = pf.load_fleet(client=pf.sample_client(), progress=False)
    copies = -(-rows // len(sample.patches))

    def renamed(frame: pd.DataFrame, copy: int) -> pd.DataFrame:
        if copy == 0:
            return frame
        ids = frame["instance_id"].astype("str")
        new = ids.str.replace(r"^(m?i-).{6}", lambda m: f"{m[1]}{copy:06x}", regex=True)
        return frame.assign(instance_id=new)

    patches = pd.concat([renamed(sample.patches, i) for i in range(copies)], ignore_index=True)
    nodes = pd.concat([renamed(sample.nodes, i) for i in range(copies)], ignore_index=True)
    patches = patches.iloc[:rows].copy()
    for frame in (patches, nodes):
        frame["instance_id"] = frame["instance_id"].astype("category")
    return pf.Fleet(patches, nodes, sample.errors)


def _floor_cells(frame: pd.DataFrame) -> tuple[list[list[Any]], list[int]]:
    """Column lists as XlsxWriter takes them (None for NA), and the time columns."""
    columns: list[list[Any]] = []
    times: list[int] = []
    for i, name in enumerate(frame.columns):
        series = frame[name]
        absent = series.isna().to_numpy()
        if pd.api.types.is_datetime64_any_dtype(series.dtype):
            times.append(i)
            utc = pd.DatetimeIndex(series).tz_localize(None).as_unit("ns")
            values = (utc.asi8 / _DAY_NS + _EXCEL_EPOCH).astype(object)
        elif pd.api.types.is_bool_dtype(series.dtype):
            values = series.to_numpy(dtype=object)
        elif pd.api.types.is_numeric_dtype(series.dtype):
            values = series.to_numpy(dtype=np.float64, na_value=np.nan).astype(object)
        else:
            values = series.astype("str").to_numpy(dtype=object)
        values[absent] = None
        columns.append(values.tolist())
    return columns, times


def _write_floor(fleet: pf.Fleet, path: Path) -> float:
    """Seconds XlsxWriter takes to write the cells; making the values ready is not counted.

    Values are made ready a chunk at a time, so that the floor's memory is
    XlsxWriter's own and not that of every cell held at once.
    """
    import xlsxwriter

    patches = fleet.patches
    frames = {
        "Patches": patches,
        "Missing and Failed": patches[patches["state"].isin(["MISSING", "FAILED"])],
        "CVEs": pf.summary.cve_exposure(patches),
        "Nodes": fleet.nodes,
    }
    book = xlsxwriter.Workbook(
        str(path),
        {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        },
    )
    date = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    writing = 0.0
    for name, frame in frames.items():
        sheet = book.add_worksheet(name)
        sheet.write_row(0, 0, list(frame.columns))
        for start in range(0, len(frame), _CHUNK_ROWS):
            columns, times = _floor_cells(frame.iloc[start : start + _CHUNK_ROWS])
            clock = time.perf_counter()
            for col in times:
                sheet.set_column(col, col, 20, date)
            for row, values in enumerate(zip(*columns, strict=True), start=1 + start):
                sheet.write_row(row, 0, values)
            writing += time.perf_counter() - clock
    clock = time.perf_counter()
    book.close()
    return writing + time.perf_counter() - clock


def child(kind: str, folder: Path) -> dict[str, float]:
    """One measurement, in this process: seconds and peak memory (MB)."""
    fleet = pf.Fleet(*(pf.read_parquet(folder / f"{part}.parquet") for part in _PARTS))
    loaded = peak_mb()
    out = folder / f"{kind}.xlsx"
    if kind == "floor":
        seconds = _write_floor(fleet, out)
    else:
        start = time.perf_counter()
        pf.to_excel(fleet, out, progress=False)
        seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "peak_mb": peak_mb(),
        "loaded_mb": loaded,
        "file_mb": out.stat().st_size / 2**20,
    }


def bench_workbook(rows: int = ROWS) -> str:
    """Write a ``rows``-row workbook both ways; return the table of figures."""
    with tempfile.TemporaryDirectory(prefix="patchframe-bench-") as name:
        folder = Path(name)
        fleet = big_fleet(rows)
        for part in _PARTS:
            pf.to_parquet(getattr(fleet, part), folder / f"{part}.parquet")
        open_rows = int(fleet.patches["state"].isin(["MISSING", "FAILED"]).sum())
        floor = run_child(__file__, "floor", folder)
        ours = run_child(__file__, "to_excel", folder)
    ratio = ours["seconds"] / floor["seconds"]
    lines = [
        f"Workbook of {rows:,} patch rows ({open_rows:,} missing or failed, "
        f"{len(fleet.nodes):,} nodes); each writer in its own process",
        "",
        f"{'writer':<20} {'time':>9} {'peak RSS':>10} {'frames':>8} {'file':>8}",
    ]
    for label, r in (("XlsxWriter floor", floor), ("to_excel", ours)):
        lines.append(
            f"{label:<20} {r['seconds']:>8.1f}s {r['peak_mb']:>7.0f} MB "
            f"{r['loaded_mb']:>5.0f} MB {r['file_mb']:>5.0f} MB"
        )
    verdict = ratio <= TARGET_RATIO and ours["peak_mb"] < TARGET_PEAK_MB
    lines += [
        "",
        f"to_excel / floor: {ratio:.2f}x time (target <= {TARGET_RATIO}x); "
        f"peak {ours['peak_mb']:,.0f} MB (target < {TARGET_PEAK_MB:,.0f} MB): "
        + ("met" if verdict else "NOT met"),
        "(frames: the peak before writing, with the fleet read back from Parquet)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS, help="patch rows (default 1,000,000)")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, folder = args.child
        print(json.dumps(child(kind, Path(folder))))
        return 0
    print(bench_workbook(args.rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
