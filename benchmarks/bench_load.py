"""Sustained load: 50 clients for 10 minutes against one `tap-service serve`; errors and RSS.

Run with `make bench-load` (or `python benchmarks/bench_load.py [--duration 600] [--clients 50]`;
`TAP_BENCH_DURATION` sets the default duration).  Not part of CI: it loads the machine.

It builds the demo catalog (100,000 objects) with the real CLI, starts the embedded service
(DuckDB, in-process async runner, SQLite job store, local results) and drives it from N client
threads, each in a closed loop (the next request as soon as the last answered), picking by weight:

* cone: a 0.2 degree ADQL cone search at a random place of the survey footprint (VOTable);
* tap_schema: the columns of a table from TAP_SCHEMA (CSV);
* sync_100k: 100,000 rows x 5 columns as CSV, every row counted;
* async: POST /async PHASE=RUN, block with WAIT until final, GET the result, DELETE the job.

A request is an error if its status is unexpected, its body is wrong (row count, job phase), or
it raises.  The server's resident set size is sampled every few seconds; the verdict wants zero
errors and RSS flat after warm-up: the last minute's median RSS no more than 10 % (and 32 MiB)
above the median of the minute after warm-up.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import ensure_demo, rss_kib  # noqa: E402
from tests.integration.conftest import start_service, stop_service  # noqa: E402

NS = {"uws": "http://www.ivoa.net/xml/UWS/v1.0"}
OBJECT = "dp02_dc2_catalogs.Object"
BIG_ROWS = 100_000
KINDS = {"cone": 45, "tap_schema": 25, "sync_100k": 10, "async": 20}


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    examples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, seconds: float, error: str | None) -> None:
        with self.lock:
            if error is None:
                self.latencies[kind].append(seconds)
            else:
                self.errors[kind] += 1
                if len(self.examples) < 10:
                    self.examples.append(f"{kind}: {error}")


class Client:
    def __init__(self, base: str, seed: int) -> None:
        self.base = base
        self.session = requests.Session()
        self.random = random.Random(seed)

    def sync(self, query: str, fmt: str = "votable", **extra: str) -> requests.Response:
        return self.session.post(
            f"{self.base}/sync",
            data={"LANG": "ADQL", "QUERY": query, "RESPONSEFORMAT": fmt, **extra},
            timeout=300,
        )

    def cone(self) -> str | None:
        ra, dec = self.random.uniform(51, 69), self.random.uniform(-44, -28)
        reply = self.sync(
            f"SELECT objectId, coord_ra, coord_dec, g_psfFlux FROM {OBJECT} WHERE "
            f"CONTAINS(POINT('ICRS', coord_ra, coord_dec), CIRCLE('ICRS', {ra:.4f}, {dec:.4f}, "
            "0.2)) = 1"
        )
        if reply.status_code != 200 or b"<VOTABLE" not in reply.content:
            return f"HTTP {reply.status_code} {reply.text[:200]}"
        return None

    def tap_schema(self) -> str | None:
        table = self.random.choice(["Object", "ForcedSource", "CcdVisit"])
        reply = self.sync(
            "SELECT column_name, datatype, unit, ucd FROM TAP_SCHEMA.columns "
            f"WHERE table_name = 'dp02_dc2_catalogs.{table}'",
            fmt="csv",
        )
        if reply.status_code != 200:
            return f"HTTP {reply.status_code} {reply.text[:200]}"
        if reply.content.count(b"\n") < 4:
            return f"too few columns listed for {table}"
        return None

    def sync_100k(self) -> str | None:
        reply = self.sync(
            f"SELECT TOP {BIG_ROWS} objectId, coord_ra, coord_dec, g_psfFlux, r_psfFlux "
            f"FROM {OBJECT}",
            fmt="csv",
            MAXREC=str(BIG_ROWS),
        )
        if reply.status_code != 200:
            return f"HTTP {reply.status_code} {reply.text[:200]}"
        lines = reply.content.count(b"\n")
        if lines != BIG_ROWS + 1:
            return f"{lines - 1} rows instead of {BIG_ROWS}"
        return None

    def run_async(self) -> str | None:
        n = self.random.randint(10, 2000)
        created = self.session.post(
            f"{self.base}/async",
            data={"LANG": "ADQL", "QUERY": f"SELECT TOP {n} objectId, coord_ra FROM {OBJECT}",
                  "RESPONSEFORMAT": "csv", "PHASE": "RUN"},
            allow_redirects=False, timeout=60,
        )  # fmt: skip
        if created.status_code != 303:
            return f"create: HTTP {created.status_code} {created.text[:200]}"
        job = f"{self.base}/async/{created.headers['location'].rsplit('/', 1)[1]}"
        phase = ""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            doc = ET.fromstring(self.session.get(job, params={"WAIT": "10"}, timeout=60).content)
            phase = doc.findtext("uws:phase", namespaces=NS) or ""
            if phase in ("COMPLETED", "ERROR", "ABORTED"):
                break
        if phase != "COMPLETED":
            return f"job ended {phase or 'not at all'}"
        result = self.session.get(f"{job}/results/result", timeout=60)
        lines = result.content.count(b"\n")
        if result.status_code != 200 or lines != n + 1:
            return f"result: HTTP {result.status_code}, {lines} lines instead of {n + 1}"
        deleted = self.session.delete(job, allow_redirects=False, timeout=60)
        if deleted.status_code not in (200, 303):
            return f"delete: HTTP {deleted.status_code}"
        return None


def drive(base: str, seed: int, stop: threading.Event, stats: Stats) -> None:
    client = Client(base, seed)
    kinds, weights = list(KINDS), list(KINDS.values())
    actions = {
        "cone": client.cone,
        "tap_schema": client.tap_schema,
        "sync_100k": client.sync_100k,
        "async": client.run_async,
    }
    while not stop.is_set():
        kind = client.random.choices(kinds, weights)[0]
        start = time.perf_counter()
        try:
            error = actions[kind]()
        except Exception as exc:  # noqa: BLE001 - every failure is counted, the run goes on
            error = f"{type(exc).__name__}: {exc}"
        stats.record(kind, time.perf_counter() - start, error)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--duration", type=float, default=float(os.environ.get("TAP_BENCH_DURATION", "600")),
        help="seconds of load (default 600, or TAP_BENCH_DURATION)",
    )  # fmt: skip
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--objects", type=int, default=BIG_ROWS)
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before RSS is judged")
    parser.add_argument("--sample", type=float, default=5.0, help="RSS sampling interval, s")
    parser.add_argument("--data-dir", type=Path, help="reuse a demo catalog built here")
    args = parser.parse_args()
    if args.objects < BIG_ROWS:
        parser.error(f"--objects must be at least {BIG_ROWS} for the 100k-row queries")

    with tempfile.TemporaryDirectory(prefix="tap-bench-load-") as tmp:
        data_dir = args.data_dir or Path(tmp) / "data"
        ensure_demo(data_dir, args.objects)
        api = start_service(data_dir, Path(tmp) / "serve.log")
        pid = api.process.pid
        print(
            f"load: {args.clients} clients for {args.duration:g} s against pid {pid}; "
            f"mix {KINDS}; load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
        )
        stats = Stats()
        stop = threading.Event()
        samples: list[tuple[float, int]] = []
        loads: list[float] = []
        threads = [
            threading.Thread(target=drive, args=(api.base_url, i, stop, stats), daemon=True)
            for i in range(args.clients)
        ]
        start = time.monotonic()
        for thread in threads:
            thread.start()
        try:
            while (elapsed := time.monotonic() - start) < args.duration:
                samples.append((elapsed, rss_kib(pid)))
                loads.append(os.getloadavg()[0])
                if api.process.poll() is not None:
                    print("the server exited during the run")
                    break
                time.sleep(min(args.sample, max(0.0, args.duration - elapsed)))
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=330)
            wall = time.monotonic() - start
            samples.append((wall, rss_kib(pid)))
            stop_service(api)
    return report(stats, samples, loads, wall, args.warmup)


def report(
    stats: Stats, samples: list[tuple[float, int]], loads: list[float], wall: float, warmup: float
) -> int:
    total_ok = sum(len(v) for v in stats.latencies.values())
    total_err = sum(stats.errors.values())
    print(f"\n{total_ok + total_err} requests in {wall:.0f} s: "
          f"{(total_ok + total_err) / wall:.1f} req/s, {total_err} errors")  # fmt: skip
    print(f"{'kind':<11} {'ok':>7} {'err':>5} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'p99 ms':>8}")  # fmt: skip
    for kind in KINDS:
        values = stats.latencies.get(kind, [])
        if not values:
            print(f"{kind:<11} {0:>7} {stats.errors.get(kind, 0):>5}")
            continue
        print(
            f"{kind:<11} {len(values):>7} {stats.errors.get(kind, 0):>5} "
            f"{len(values) / wall:>7.2f} {percentile(values, 0.5) * 1e3:>8.0f} "
            f"{percentile(values, 0.95) * 1e3:>8.0f} {percentile(values, 0.99) * 1e3:>8.0f}"
        )
    for example in stats.examples:
        print(f"  error: {example}")
    print(f"load average during the run: median {statistics.median(loads):.1f}, "
          f"max {max(loads):.1f} (others share this machine)")  # fmt: skip

    print("\nminute  RSS MiB (median of samples)  max")
    by_minute: dict[int, list[int]] = defaultdict(list)
    for t, kib in samples:
        if kib:
            by_minute[int(t // 60)].append(kib)
    for minute in sorted(by_minute):
        rss = by_minute[minute]
        print(f"{minute:>6}  {statistics.median(rss) / 1024:>10.1f}"
              f"                  {max(rss) / 1024:>6.1f}")  # fmt: skip

    after = [kib for t, kib in samples if warmup <= t < warmup + 60 and kib]
    last = [kib for t, kib in samples if t >= wall - 60 and kib]
    flat: bool | None = None
    if after and last and wall >= warmup + 60:
        base, end = statistics.median(after), statistics.median(last)
        growth = end - base
        flat = growth <= max(0.10 * base, 32 * 1024)
        print(f"\nRSS after warm-up {base / 1024:.1f} MiB, last minute {end / 1024:.1f} MiB "
              f"({growth / 1024:+.1f} MiB)")  # fmt: skip
    else:
        print("\nrun too short to judge RSS after warm-up (needs warm-up + 60 s)")
    ok = total_err == 0 and flat is not False
    judged = {None: "not judged", True: "flat", False: "growing"}[flat]
    print(f"verdict: {'PASS' if ok else 'FAIL'} (errors {total_err}, RSS {judged})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
