"""ADQL translation cost: parse + check + to_sql, per query, median and p95.

Two samples, measured in one run: (1) typical queries on the demo catalog (cone searches,
joins, aggregates, TAP_SCHEMA), checked against the demo Felis schema and rendered for both
dialects; (2) every distinct valid query of the IVOA lyonetia corpus
(../shared/adql-corpus), checked without a catalog and rendered for the embedded dialect
(those the dialect refuses count up to the refusal).  Target: median <= 0.5 ms.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tap_service import adql  # noqa: E402
from tap_service.adql.catalog import SimpleCatalog  # noqa: E402
from tap_service.felis import load_felis, tap_schema_schema  # noqa: E402

TARGET_MEDIAN_MS = 0.5
OBJ = "dp02_dc2_catalogs.Object"
FS = "dp02_dc2_catalogs.ForcedSource"
CV = "dp02_dc2_catalogs.CcdVisit"

DEMO_QUERIES = [
    f"SELECT objectId, coord_ra, coord_dec FROM {OBJ} WHERE CONTAINS(POINT('ICRS', coord_ra, "
    "coord_dec), CIRCLE('ICRS', 62.0, -37.0, 0.05)) = 1",
    f"SELECT TOP 100 objectId, r_psfFlux FROM {OBJ} WHERE CONTAINS(POINT('ICRS', coord_ra, "
    "coord_dec), CIRCLE('ICRS', 62, -37, 5/3600.)) = 1 ORDER BY r_psfFlux DESC",
    f"SELECT objectId, DISTANCE(POINT('ICRS', coord_ra, coord_dec), POINT('ICRS', 60, -35)) AS d "
    f"FROM {OBJ} WHERE 1 = CONTAINS(POINT('ICRS', coord_ra, coord_dec), BOX('ICRS', 60, -35, 1, "
    "1)) ORDER BY d",
    f"SELECT objectId FROM {OBJ} WHERE CONTAINS(POINT('ICRS', coord_ra, coord_dec), POLYGON("
    "'ICRS', 60, -36, 61, -36, 61, -35, 60, -35)) = 1 AND detect_isPrimary = 1",
    f"SELECT fs.objectId, fs.band, cv.expMidptMJD, fs.psfFlux FROM {FS} AS fs JOIN {CV} AS cv "
    "ON fs.ccdVisitId = cv.ccdVisitId WHERE fs.objectId = 1249537790362809267 "
    "ORDER BY cv.expMidptMJD",
    f"SELECT band, COUNT(*) AS n, AVG(psfFlux) AS f FROM {FS} GROUP BY band ORDER BY band",
    f"SELECT o.objectId, o.g_psfFlux, o.r_psfFlux FROM {OBJ} AS o WHERE o.g_psfFlux > 1000 AND "
    "o.r_psfFlux BETWEEN 100 AND 100000 AND o.refExtendedness = 0",
    "SELECT column_name, datatype, unit, ucd FROM TAP_SCHEMA.columns WHERE table_name = "
    f"'{OBJ}' ORDER BY column_index",
    "SELECT table_name, description FROM TAP_SCHEMA.tables WHERE schema_name LIKE 'dp02%'",
    f"SELECT COUNT(*) FROM {OBJ} WHERE detect_isPrimary = 1",
]


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def summary(name: str, per_query_ms: list[float]) -> None:
    ordered = sorted(per_query_ms)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    median = statistics.median(ordered)
    print(
        f"{name}: {len(ordered)} queries, median {median:.3f} ms, p95 {p95:.3f} ms "
        f"(target median {TARGET_MEDIAN_MS} ms: x{median / TARGET_MEDIAN_MS:.2f})"
    )


def main() -> None:
    tables = load_felis(REPO / "schema" / "dp02_demo.yaml").table_infos()
    tables += tap_schema_schema().table_infos()
    catalog = SimpleCatalog(tables)

    for dialect in ("embedded", "qserv"):
        medians = []
        for text in DEMO_QUERIES:

            def run(text: str = text, dialect: str = dialect) -> object:
                checked = adql.check(adql.parse(text), catalog, text=text)
                try:
                    return adql.to_sql(checked, dialect)
                except adql.AdqlUnsupportedError:
                    return None

            run()  # warm caches (grammar, per-table indexes)
            medians.append(statistics.median(timed(run, 50)))
        summary(f"demo queries, {dialect} dialect", medians)

    corpus = REPO.parent / "shared" / "adql-corpus" / "lyonetia-index.jsonl"
    if not corpus.exists():
        print(f"lyonetia corpus not found at {corpus}: skipped")
        return
    texts = []
    for line in corpus.read_text().splitlines():
        entry = json.loads(line)
        if entry["valid"] and entry["duplicate_of"] is None:
            texts.append(entry["adql"])
    medians = []
    for text in texts:

        def run_corpus(text: str = text) -> object:
            try:
                checked = adql.check(adql.parse(text), None, text=text)
                return adql.to_sql(checked, "embedded")
            except adql.AdqlError:
                return None

        run_corpus()
        medians.append(statistics.median(timed(run_corpus, 10)))
    summary("lyonetia valid corpus, no catalog, embedded dialect", medians)


if __name__ == "__main__":
    main()
