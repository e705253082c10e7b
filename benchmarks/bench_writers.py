"""Throughput and peak memory of the result writers on DP0.2-like rows.

Each format runs in a fresh child process so its peak RSS (``ru_maxrss``) is its own: the
child builds a handful of distinct batches, records its RSS high-water mark, then streams
``--rows`` rows through the writer (cycling the batches, as a database cursor would hand them
over) and discards the output.  "peak extra" is the growth of the high-water mark during the
write, i.e. what the writer itself needs on top of the batch in hand.

The astropy BINARY2 writer is timed on a smaller slice of the same rows for the ratio.

    .venv/bin/python benchmarks/bench_writers.py [--rows 1000000] [--runs 5]
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np
import pyarrow as pa

from tap_service.votable import Field, make_writer

FORMATS = ["votable", "votable/td", "votable/b", "csv", "tsv"]
BATCH_ROWS = 65536
DISTINCT_BATCHES = 4

FIELDS = [
    Field(name="objectId", datatype="long", ucd="meta.id;meta.main"),
    Field(name="parentObjectId", datatype="long"),
    Field(name="coord_ra", datatype="double", unit="deg"),
    Field(name="coord_dec", datatype="double", unit="deg"),
    Field(name="tract", datatype="int"),
    Field(name="patch", datatype="short"),
    Field(name="detect_isPrimary", datatype="boolean"),
    Field(name="g_psfFlux", datatype="double", unit="nJy"),
    Field(name="g_psfFluxErr", datatype="float", unit="nJy"),
    Field(name="r_psfFlux", datatype="double", unit="nJy"),
    Field(name="r_psfFluxErr", datatype="float", unit="nJy"),
    Field(name="i_psfFlux", datatype="double", unit="nJy"),
    Field(name="i_psfFluxErr", datatype="float", unit="nJy"),
    Field(name="g_extendedness", datatype="float"),
    Field(name="r_extendedness", datatype="float"),
    Field(name="i_pixelFlags_saturated", datatype="boolean"),
    Field(name="shape_xx", datatype="double"),
    Field(name="refBand", datatype="char", arraysize="*"),
    Field(name="refFit", datatype="char", arraysize="*"),
    Field(name="deblend_nChild", datatype="int"),
]


def make_batch(rows: int, seed: int) -> pa.RecordBatch:
    """DP0.2 Object-like columns with realistic NULL rates (fluxes ~5%, parent ~60%)."""
    rng = np.random.default_rng(seed)

    def mask(rate: float) -> Any:
        return rng.random(rows) < rate

    ids = rng.integers(1_250_000_000_000_000_000, 1_900_000_000_000_000_000, rows)
    columns = [
        pa.array(ids, pa.int64()),
        pa.array(ids - rng.integers(1, 1000, rows), pa.int64(), mask=mask(0.6)),
        pa.array(rng.uniform(50, 75, rows)),
        pa.array(rng.uniform(-45, -25, rows)),
        pa.array(rng.integers(2700, 5000, rows, dtype=np.int32)),
        pa.array(rng.integers(0, 49, rows, dtype=np.int16)),
        pa.array(rng.random(rows) < 0.8),
    ]
    for _band in "gri":
        columns.append(pa.array(rng.lognormal(6, 2, rows), mask=mask(0.05)))
        columns.append(pa.array(rng.lognormal(3, 1, rows).astype(np.float32), mask=mask(0.05)))
    columns.append(pa.array(rng.random(rows).astype(np.float32), mask=mask(0.1)))
    columns.append(pa.array(rng.random(rows).astype(np.float32), mask=mask(0.1)))
    columns.append(pa.array(rng.random(rows) < 0.01, mask=mask(0.02)))
    columns.append(pa.array(rng.normal(3, 1, rows)))
    bands = np.array(["u", "g", "r", "i", "z", "y"], dtype=object)
    columns.append(pa.array(bands[rng.integers(0, 6, rows)], pa.string()))
    fits = np.array(["CModel", "psf", "sersic_exp", "gauss"], dtype=object)
    columns.append(pa.array(fits[rng.integers(0, 4, rows)], pa.string(), mask=mask(0.2)))
    columns.append(pa.array(rng.integers(0, 5, rows, dtype=np.int32)))
    return pa.record_batch(columns, names=[f.name for f in FIELDS])


def run_child(response_format: str, rows: int) -> dict[str, Any]:
    batches = [make_batch(BATCH_ROWS, seed) for seed in range(DISTINCT_BATCHES)]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    writer = make_writer(response_format, FIELDS, table_name="dp02_dc2_catalogs.Object")
    start = time.perf_counter()
    size = len(writer.begin())
    written = 0
    index = 0
    while written < rows:
        batch = batches[index % DISTINCT_BATCHES]
        if rows - written < batch.num_rows:
            batch = batch.slice(0, rows - written)
        size += len(writer.write_batch(batch))
        written += batch.num_rows
        index += 1
    size += len(writer.end())
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": elapsed, "bytes": size, "extra_kib": after - before}


def astropy_binary2(rows: int) -> dict[str, Any]:
    """Reference: astropy's own BINARY2 writer on the same kind of rows."""
    from astropy.io.votable.tree import VOTableFile  # noqa: PLC0415
    from astropy.table import Table  # noqa: PLC0415

    from astropy.table import MaskedColumn  # noqa: PLC0415

    batch = make_batch(rows, 0)
    table = Table()
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        mask = column.is_null().to_numpy(zero_copy_only=False)
        if pa.types.is_string(column.type):
            data = np.array(column.fill_null("").to_pylist(), dtype=object)
        else:
            data = column.fill_null(0 if pa.types.is_integer(column.type) else False
                                    if pa.types.is_boolean(column.type) else np.nan).to_numpy()
        table[name] = MaskedColumn(data, mask=mask)
    votable = VOTableFile.from_table(table)
    votable.get_first_table().format = "binary2"
    out = io.BytesIO()
    start = time.perf_counter()
    votable.to_xml(out)
    elapsed = time.perf_counter() - start
    return {"seconds": elapsed, "bytes": len(out.getvalue()), "extra_kib": 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--formats", nargs="*", default=FORMATS)
    parser.add_argument("--astropy-rows", type=int, default=50_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = (
            astropy_binary2(args.rows) if args.child == "astropy" else run_child(args.child, args.rows)
        )
        print(json.dumps(result))
        return

    print(f"{args.rows:,} rows x {len(FIELDS)} columns, batches of {BATCH_ROWS:,} rows,")
    print(f"median of {args.runs} runs, each in a fresh process\n")
    header = f"{'format':<12} {'MB/s':>8} {'Mrows/s':>8} {'seconds':>8} {'MB out':>8} {'peak extra MiB':>15}"
    print(header)
    print("-" * len(header))
    medians: dict[str, float] = {}
    for name in [*args.formats, "astropy"]:
        rows = args.astropy_rows if name == "astropy" else args.rows
        runs = []
        for _ in range(args.runs if name != "astropy" else min(args.runs, 3)):
            output = subprocess.run(
                [sys.executable, __file__, "--child", name, "--rows", str(rows)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            runs.append(json.loads(output))
        seconds = statistics.median(run["seconds"] for run in runs)
        size = runs[0]["bytes"]
        extra = statistics.median(run["extra_kib"] for run in runs) / 1024
        mb_per_s = size / seconds / 1e6
        medians[name] = mb_per_s
        label = "astropy b2" if name == "astropy" else name
        memory = "n/a" if name == "astropy" else f"{extra:.1f}"
        print(
            f"{label:<12} {mb_per_s:8.1f} {rows / seconds / 1e6:8.3f} {seconds:8.3f}"
            f" {size / 1e6:8.1f} {memory:>15}"
        )
    if "votable" in medians:
        print(f"\nBINARY2 vs astropy BINARY2: {medians['votable'] / medians['astropy']:.0f}x")


if __name__ == "__main__":
    main()
