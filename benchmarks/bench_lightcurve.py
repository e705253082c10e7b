"""Light-curve latency: /api/datalink/timeseries for objects with 500 forced sources each.

Run with `python benchmarks/bench_lightcurve.py [--objects N] [--requests R]`.  It builds a demo
catalog with 500 forced sources per object (so every light curve has 500 points) in a temporary
directory, starts `tap-service serve` with Rubin's DataLink templates configured, and times
sequential keep-alive GETs for random objects.  Beside each figure it prints the same light
curve asked as ADQL through /sync, so the ratio shows what the DataLink layer adds.
Target (issue 8): median under 50 ms for the VOTable light curve.
"""

from __future__ import annotations

import argparse
import http.client
import random
import statistics
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tap_service.adql.dialects.embedded import setup_statements  # noqa: E402
from tap_service.services.demo_catalog import build_demo_catalog  # noqa: E402
from tap_service.storage.embedded import EmbeddedDatabase  # noqa: E402
from tests.integration.conftest import start_service, stop_service  # noqa: E402

RUBIN_DATALINK = REPO.parent / "shared" / "rubin-sdm" / "datalink"
POINTS = 500
TARGET_MS = 50.0


def get(conn: http.client.HTTPConnection, path: str, params: dict[str, str]) -> bytes:
    conn.request("GET", f"{path}?{urllib.parse.urlencode(params)}")
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}: {data[:300]!r}")
    return data


def timed(
    conn: http.client.HTTPConnection, path: str, requests: list[dict[str, str]]
) -> tuple[list[float], int]:
    get(conn, path, requests[0])  # warm-up
    times = []
    size = 0
    for params in requests:
        start = time.perf_counter()
        size = len(get(conn, path, params))
        times.append((time.perf_counter() - start) * 1000)
    return times, size


def sync_adql(object_id: int, band: str) -> str:
    where = f"t.objectId = {object_id}" + ("" if band == "all" else f" AND t.band = '{band}'")
    return (
        "SELECT t.forcedSourceId, t.objectId, t.ccdVisitId, t.band, t.psfFlux, t.psfFluxErr, "
        "t.psfDiffFlux, t.psfDiffFluxErr, t.detect_isPrimary, v.expMidptMJD "
        "FROM dp02_dc2_catalogs.ForcedSource AS t JOIN dp02_dc2_catalogs.CcdVisit AS v "
        f"ON t.ccdVisitId = v.ccdVisitId WHERE {where} ORDER BY v.expMidptMJD"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-lc-") as tmp:
        data_dir = Path(tmp)
        db = EmbeddedDatabase(data_dir, setup_statements=setup_statements())
        started = time.perf_counter()
        counts = build_demo_catalog(db, n_objects=args.objects, n_forced_per_object=POINTS)
        ids = [
            int(v)
            for v in db.query("SELECT objectId FROM dp02_dc2_catalogs.Object").column(0).to_pylist()
        ]
        db.close()
        print(
            f"demo catalog: {counts.objects:,} objects, {counts.forced_sources:,} forced sources "
            f"({POINTS} per object), built in {time.perf_counter() - started:.1f} s"
        )
        service = start_service(
            data_dir,
            data_dir / "serve.log",
            extra_env={"TAP_DATALINK__TEMPLATES_DIR": str(RUBIN_DATALINK)},
        )
        try:
            url = urllib.parse.urlsplit(service.base_url)
            conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=60)
            rng = random.Random(1)
            chosen = [rng.choice(ids) for _ in range(args.requests)]
            cases = [
                ("VOTable, all bands, principal", {}, "all"),
                ("VOTable, band r, principal", {"band": "r"}, "r"),
                ("VOTable, all bands, full", {"detail": "full"}, None),
                ("VOTable, all bands, minimal", {"detail": "minimal"}, None),
                ("CSV, all bands", {"RESPONSEFORMAT": "csv"}, None),
                ("PNG plot, all bands", {"RESPONSEFORMAT": "image/png"}, None),
            ]
            print(f"\n{args.requests} sequential requests per line, random objects, keep-alive")
            print(
                f"{'request':34} {'p50 ms':>8} {'p95 ms':>8} {'bytes':>9} {'/sync p50':>10} ratio"
            )
            for label, extra, band in cases:
                reqs = [{"id": str(i), **extra} for i in chosen]
                times, size = timed(conn, "/api/datalink/timeseries", reqs)
                p50 = statistics.median(times)
                p95 = sorted(times)[int(0.95 * len(times)) - 1]
                line = f"{label:34} {p50:8.1f} {p95:8.1f} {size:9,d}"
                if band is not None:
                    sync = [{"LANG": "ADQL", "QUERY": sync_adql(i, band)} for i in chosen]
                    sync_times, _ = timed(conn, url.path + "/sync", sync)
                    sync_p50 = statistics.median(sync_times)
                    line += f" {sync_p50:10.1f} {p50 / sync_p50:5.2f}"
                print(line)
                if label.startswith("VOTable, all bands, principal"):
                    verdict = "meets" if p50 < TARGET_MS else "MISSES"
                    print(f"{'':34} target p50 < {TARGET_MS:.0f} ms: {verdict}")
            conn.close()
        finally:
            stop_service(service)


if __name__ == "__main__":
    main()
