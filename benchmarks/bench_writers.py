"""Throughput and peak memory of the result writers on DP0.2-like rows.

Each format runs in a fresh child process so its peak RSS (``ru_maxrss``) is its own: the
child builds a handful of distinct batches, records its RSS high-water mark, then streams
``--rows`` rows through the writer (cycling the batches, as a database cursor would hand them
over) and discards the output.  "peak extra" is the growth of the high-water mark during the
write, i.e. what the writer itself needs on top of the batch in hand.

The astropy BINARY2 writer is timed on a smaller slice of the same rows for the ratio.  The
"limit" row is what no BINARY2 writer can beat on this machine: the same record bytes (our
BINARY2 payload of each batch, decoded once before timing) copied out of a numpy array and
base64-encoded, with nothing else to do.

    .venv/bin/python benchmarks/bench_writers.py [--rows 1000000] [--runs 5]
"""

from __future__ import annotations

import argparse
import base64
import binascii
import io
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np
import pyarrow as pa

from tap_service.votable import Field, make_writer

FORMATS = ["votable", "votable/td", "votable/b", "csv", "tsv", "parquet"]
BATCH_ROWS = 16384  # the service default (config batch_rows)
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


def _payload(batch: pa.RecordBatch) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """The raw BINARY2 records of one batch (base64 decoded from our own document)."""
    writer = make_writer("votable", FIELDS)
    document = writer.begin() + writer.write_batch(batch) + writer.end()
    found = re.search(rb"<STREAM encoding=\"base64\">\n(.*?)</STREAM>", document, re.S)
    assert found is not None
    return np.frombuffer(base64.b64decode(found.group(1)), np.uint8)


def run_limit(rows: int, batch_rows: int) -> dict[str, Any]:
    """numpy bytes + base64 of the BINARY2 payload: the ceiling for any BINARY2 writer."""
    batches = [make_batch(batch_rows, seed) for seed in range(DISTINCT_BATCHES)]
    payloads = [_payload(batch) for batch in batches]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    cpu = time.process_time()
    size = 0
    written = 0
    index = 0
    while written < rows:
        payload = payloads[index % DISTINCT_BATCHES]
        count = min(batch_rows, rows - written)
        if count < batch_rows:
            payload = payload[: len(payload) * count // batch_rows]
        size += len(binascii.b2a_base64(payload.copy(), newline=False))
        written += count
        index += 1
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": elapsed, "cpu": cpu, "bytes": size, "extra_kib": after - before}


def run_child(response_format: str, rows: int, batch_rows: int) -> dict[str, Any]:
    if response_format == "limit":
        return run_limit(rows, batch_rows)
    batches = [make_batch(batch_rows, seed) for seed in range(DISTINCT_BATCHES)]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    writer = make_writer(response_format, FIELDS, table_name="dp02_dc2_catalogs.Object")
    start = time.perf_counter()
    cpu = time.process_time()
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
    cpu = time.process_time() - cpu
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": elapsed, "cpu": cpu, "bytes": size, "extra_kib": after - before}


def astropy_binary2(rows: int) -> dict[str, Any]:
    """Reference: astropy's own BINARY2 writer on the same kind of rows."""
    from astropy.io.votable.tree import VOTableFile
    from astropy.table import MaskedColumn, Table

    batch = make_batch(rows, 0)
    table = Table()
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        mask = column.is_null().to_numpy(zero_copy_only=False)
        if pa.types.is_string(column.type):
            data = np.array(column.fill_null("").to_pylist(), dtype=str)
        elif pa.types.is_boolean(column.type):
            data = column.fill_null(False).to_numpy(zero_copy_only=False)
        elif pa.types.is_integer(column.type):
            data = column.fill_null(0).to_numpy()
        else:
            data = column.fill_null(np.nan).to_numpy()
        table[name] = MaskedColumn(data, mask=mask)
    votable = VOTableFile.from_table(table)
    votable.get_first_table().format = "binary2"
    out = io.BytesIO()
    start = time.perf_counter()
    cpu = time.process_time()
    votable.to_xml(out)
    cpu = time.process_time() - cpu
    elapsed = time.perf_counter() - start
    return {"seconds": elapsed, "cpu": cpu, "bytes": len(out.getvalue()), "extra_kib": 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--formats", nargs="*", default=FORMATS)
    parser.add_argument("--astropy-rows", type=int, default=50_000)
    parser.add_argument("--batch-rows", type=int, default=BATCH_ROWS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = (
            astropy_binary2(args.rows)
            if args.child == "astropy"
            else run_child(args.child, args.rows, args.batch_rows)
        )
        print(json.dumps(result))
        return

    print(f"{args.rows:,} rows x {len(FIELDS)} columns, batches of {args.batch_rows:,} rows;")
    load = os.getloadavg()[0]
    print(f"median of {args.runs} runs, each in a fresh process; load average {load:.1f}")
    print("(wall = elapsed time; cpu = process CPU time, less sensitive to other load)\n")
    header = (
        f"{'format':<12} {'wall MB/s':>10} {'cpu MB/s':>9} {'Mrows/s':>8} {'seconds':>8}"
        f" {'MB out':>7} {'peak extra MiB':>15}"
    )
    print(header)
    print("-" * len(header))
    medians: dict[str, float] = {}
    for name in [*args.formats, "limit", "astropy"]:
        rows = args.astropy_rows if name == "astropy" else args.rows
        runs = []
        for _ in range(args.runs if name != "astropy" else min(args.runs, 3)):
            command = [sys.executable, __file__, "--child", name, "--rows", str(rows)]
            command += ["--batch-rows", str(args.batch_rows)]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            runs.append(json.loads(output))
        seconds = statistics.median(run["seconds"] for run in runs)
        cpu = statistics.median(run["cpu"] for run in runs)
        size = runs[0]["bytes"]
        extra = statistics.median(run["extra_kib"] for run in runs) / 1024
        medians[name] = size / cpu / 1e6
        label = {"astropy": "astropy b2", "limit": "b64 limit"}.get(name, name)
        memory = "n/a" if name == "astropy" else f"{extra:.1f}"
        print(
            f"{label:<12} {size / seconds / 1e6:10.1f} {size / cpu / 1e6:9.1f}"
            f" {rows / seconds / 1e6:8.3f} {seconds:8.3f} {size / 1e6:7.1f} {memory:>15}"
        )
    if "votable" in medians:
        ratio = medians["votable"] / medians["astropy"]
        print(f"\nBINARY2 vs astropy BINARY2 (cpu MB/s): {ratio:.0f}x")
        share = medians["votable"] / medians["limit"]
        print(f"BINARY2 vs the numpy+base64 limit (cpu MB/s): {share:.0%}")
    print("targets (issue 6): BINARY2 >= 500 MB/s, TABLEDATA >= 0.4 Mrows/s, peak extra <= 50 MiB")


if __name__ == "__main__":
    main()
