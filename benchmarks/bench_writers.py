"""Throughput and peak memory of the result writers on DP0.2-like rows.

Each format runs in a fresh child process so its peak RSS (``ru_maxrss``) is its own: the
child builds a handful of distinct batches, records its RSS high-water mark, then streams
``--rows`` rows through the writer (cycling the batches, as a database cursor would hand them
over) and discards the output.  "peak extra" is the growth of the high-water mark during the
write, i.e. what the writer itself needs on top of the batch in hand.

The astropy BINARY2 writer is timed on a smaller slice of the same rows for the ratio.  The
"limit" row is what no BINARY2 writer can beat on this machine: the same record bytes (our
BINARY2 payload of each batch, decoded once before timing) copied out of a numpy array and
base64-encoded with the writer's own encoder (pybase64), with nothing else to do.  The
"stdlib lim" row does the same with the standard library's ``binascii``: the limit as issue 6
defines and measured it (~977 MB/s), which the 50% target is judged against (also paired in
one process); the SIMD "b64 limit" is shown for information only.

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
from pybase64 import b64encode

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
    Field(name="z_psfFlux", datatype="double", unit="nJy"),
    Field(name="z_psfFluxErr", datatype="float", unit="nJy"),
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
    for _band in "griz":
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


def _stdlib_b64(data: Any) -> bytes:
    return binascii.b2a_base64(data, newline=False)


LIMIT_ENCODERS = {"limit": b64encode, "limit-stdlib": _stdlib_b64}


def run_limit(rows: int, batch_rows: int, encode: Any = b64encode) -> dict[str, Any]:
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
        size += len(encode(payload.copy()))
        written += count
        index += 1
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": elapsed, "cpu": cpu, "bytes": size, "extra_kib": after - before}


def run_child(response_format: str, rows: int, batch_rows: int) -> dict[str, Any]:
    if response_format in LIMIT_ENCODERS:
        return run_limit(rows, batch_rows, LIMIT_ENCODERS[response_format])
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


def run_paired(rows: int, batch_rows: int, rounds: int) -> dict[str, Any]:
    """BINARY2 and the limit alternately in one process, ``rounds`` times each: the share of
    the limit from pairs measured seconds apart, which other load distorts far less than
    separate processes do."""
    batches = [make_batch(batch_rows, seed) for seed in range(DISTINCT_BATCHES)]
    payloads = [_payload(batch) for batch in batches]
    count = -(-rows // batch_rows)

    def limit() -> tuple[float, int]:
        cpu = time.process_time()
        size = 0
        for index in range(count):
            size += len(_stdlib_b64(payloads[index % DISTINCT_BATCHES].copy()))
        return time.process_time() - cpu, size

    def ours() -> tuple[float, int]:
        writer = make_writer("votable", FIELDS)
        cpu = time.process_time()
        size = 0
        for index in range(count):
            size += len(writer.write_batch(batches[index % DISTINCT_BATCHES]))
        return time.process_time() - cpu, size

    shares, ours_mbs, limit_mbs = [], [], []
    for _ in range(rounds):
        limit_cpu, limit_size = limit()
        ours_cpu, ours_size = ours()
        ours_mbs.append(ours_size / ours_cpu / 1e6)
        limit_mbs.append(limit_size / limit_cpu / 1e6)
        shares.append(ours_mbs[-1] / limit_mbs[-1])
    return {
        "share": statistics.median(shares),
        "ours_mbs": statistics.median(ours_mbs),
        "limit_mbs": statistics.median(limit_mbs),
    }


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
    parser.add_argument(
        "--memory-rows", type=int, default=4_000_000, help="BINARY2 peak memory at this many rows"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child == "astropy":
            result = astropy_binary2(args.rows)
        elif args.child == "paired":
            result = run_paired(args.rows, args.batch_rows, args.runs)
        else:
            result = run_child(args.child, args.rows, args.batch_rows)
        print(json.dumps(result))
        return

    print(f"{args.rows:,} rows x {len(FIELDS)} columns, batches of {args.batch_rows:,} rows;")
    load = os.getloadavg()[0]
    print(f"median of {args.runs} runs, each in a fresh process; load average {load:.1f}")
    print("(wall = elapsed time; cpu = process CPU time, less sensitive to other load)\n")
    header = (
        f"{'format':<12} {'wall MB/s':>10} {'cpu MB/s':>9} {'Mrows/s':>8} {'cpu Mrows/s':>11}"
        f" {'seconds':>8} {'MB out':>7} {'peak extra MiB':>15}"
    )
    print(header)
    print("-" * len(header))
    names = [*args.formats, "limit", "limit-stdlib", "astropy"]
    rows_of = {name: args.astropy_rows if name == "astropy" else args.rows for name in names}
    # Round robin (one run of every format, then the next round): load that comes and goes
    # during the benchmark then weighs on all formats alike, which keeps the ratios fair.
    all_runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for round_number in range(args.runs):
        for name in names:
            if name != "astropy" or round_number < 3:
                all_runs[name].append(_child(name, rows_of[name], args.batch_rows))
    results: dict[str, dict[str, float]] = {}
    for name in names:
        rows = rows_of[name]
        runs = all_runs[name]
        seconds = statistics.median(run["seconds"] for run in runs)
        cpu = statistics.median(run["cpu"] for run in runs)
        size = runs[0]["bytes"]
        extra = statistics.median(run["extra_kib"] for run in runs) / 1024
        results[name] = {
            "wall_mbs": size / seconds / 1e6,
            "cpu_mbs": size / cpu / 1e6,
            "wall_rows": rows / seconds,
            "cpu_rows": rows / cpu,
            "extra_mib": extra,
        }
        label = {"astropy": "astropy b2", "limit": "b64 limit", "limit-stdlib": "stdlib lim"}.get(
            name, name
        )
        memory = "n/a" if name == "astropy" else f"{extra:.1f}"
        print(
            f"{label:<12} {size / seconds / 1e6:10.1f} {size / cpu / 1e6:9.1f}"
            f" {rows / seconds / 1e6:8.3f} {rows / cpu / 1e6:11.3f} {seconds:8.3f}"
            f" {size / 1e6:7.1f} {memory:>15}"
        )
    growth: list[tuple[int, float]] = []
    if "votable" in results and args.memory_rows:
        # Peak extra memory must not grow with the row count: BINARY2 once more, far longer.
        run = _child("votable", args.memory_rows, args.batch_rows)
        growth.append((args.memory_rows, run["extra_kib"] / 1024))
        print(f"\nBINARY2 at {args.memory_rows:,} rows: peak extra {growth[0][1]:.1f} MiB")
    paired = None
    if "votable" in results:
        command = [sys.executable, __file__, "--child", "paired", "--rows", str(args.rows)]
        command += ["--batch-rows", str(args.batch_rows), "--runs", str(args.runs)]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        paired = json.loads(output)
        print(
            f"BINARY2 and the limit alternately in one process ({args.runs} pairs, cpu):"
            f" {paired['ours_mbs']:.0f} and {paired['limit_mbs']:.0f} MB/s,"
            f" median share {paired['share']:.0%}"
        )
    _verdicts(results, growth, paired)


def _child(name: str, rows: int, batch_rows: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", name, "--rows", str(rows)]
    command += ["--batch-rows", str(batch_rows)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(output)
    return result


def _verdicts(
    results: dict[str, dict[str, float]],
    growth: list[tuple[int, float]],
    paired: dict[str, float] | None,
) -> None:
    """Issue 6 targets, each judged on CPU time (what the code costs) and on wall time (what
    this machine delivered with its current load)."""
    print("\ntargets (issue 6)                      cpu              wall")
    checks: list[tuple[str, float, float, float, str]] = []
    b2, astropy = results.get("votable"), results.get("astropy")
    if b2 is not None:
        checks.append(("BINARY2 >= 500 MB/s", b2["cpu_mbs"], b2["wall_mbs"], 500.0, "MB/s"))
        stdlib = results.get("limit-stdlib")
        if stdlib is not None:
            # Judged against the limit (numpy bytes + the standard library's base64);
            # the SIMD limit is printed for information: cache-resident base64 at ~20 GB/s is
            # no longer what a writer that has to build the records can approach.
            cpu_share = b2["cpu_mbs"] / stdlib["cpu_mbs"] * 100
            wall_share = b2["wall_mbs"] / stdlib["wall_mbs"] * 100
            checks.append(("BINARY2 >= 50% of the b64 limit", cpu_share, wall_share, 50.0, "%"))
        if paired is not None:
            share = paired["share"] * 100
            checks.append(("  same, paired in one process", share, share, 50.0, "%"))
        if astropy is not None:
            cpu_ratio = b2["cpu_mbs"] / astropy["cpu_mbs"]
            wall_ratio = b2["wall_mbs"] / astropy["wall_mbs"]
            checks.append(("BINARY2 >= 100x astropy", cpu_ratio, wall_ratio, 100.0, "x"))
    td = results.get("votable/td")
    if td is not None:
        checks.append(("TABLEDATA >= 400k rows/s", td["cpu_rows"], td["wall_rows"], 4e5, "rows/s"))
    for label, cpu, wall, target, unit in checks:
        print(
            f"  {label:<34} {cpu:>9.0f} {unit:<6} {_mark(cpu >= target)}"
            f"  {wall:>9.0f} {unit:<6} {_mark(wall >= target)}"
        )
    peaks = [(name, r["extra_mib"]) for name, r in results.items() if name != "astropy"]
    peaks += [(f"votable@{rows:,}", extra) for rows, extra in growth]
    worst = max(peaks, key=lambda item: item[1]) if peaks else ("-", 0.0)
    print(
        f"  {'peak extra memory <= 50 MiB':<34} worst {worst[1]:.1f} MiB ({worst[0]})"
        f" {_mark(worst[1] <= 50)}"
    )


def _mark(ok: bool) -> str:
    return "PASS" if ok else "MISS"


if __name__ == "__main__":
    main()
