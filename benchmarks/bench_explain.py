"""Explain latency: parse + check + estimate, and the estimate alone (target: < 5 ms median).

Run: ``.venv/bin/python benchmarks/bench_explain.py``.  Partitioning as DP0.2 (numStripes
340, numSubStripesPerStripe 3: 146,332 chunks); the catalog is the demo Felis schema.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from tap_service import adql
from tap_service.adql.catalog import SimpleCatalog
from tap_service.config import PartitionedTableConfig
from tap_service.felis import load_felis
from tap_service.services.explain import estimate

ROOT = Path(__file__).parents[1]
POS = "CONTAINS(POINT('ICRS', coord_ra, coord_dec), "
QUERIES = {
    "cone 0.1 deg": f"SELECT objectId FROM dp02_dc2_catalogs.Object WHERE {POS}"
    "CIRCLE('ICRS', 62, -37, 0.1)) = 1",
    "cone 3 deg": f"SELECT COUNT(*) FROM dp02_dc2_catalogs.Object WHERE {POS}"
    "CIRCLE('ICRS', 62, -37, 3)) = 1",
    "box 1x1 deg on RA 0": f"SELECT objectId FROM dp02_dc2_catalogs.Object WHERE {POS}"
    "BOX('ICRS', 0, -10, 1, 1)) = 1",
    "polygon 2 deg": f"SELECT objectId FROM dp02_dc2_catalogs.Object WHERE {POS}"
    "POLYGON('ICRS', 61, -38, 63, -38, 62, -36)) = 1",
    "objectId IN": "SELECT * FROM dp02_dc2_catalogs.Object WHERE objectId IN (1, 2, 3)",
    "full scan": "SELECT COUNT(*) FROM dp02_dc2_catalogs.Object WHERE r_psfFlux > 10",
}


def median_ms(fn: object, repeat: int = 200) -> float:
    assert callable(fn)
    fn()  # warm (scheme cache)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    catalog = SimpleCatalog(load_felis(ROOT / "schema" / "dp02_demo.yaml").table_infos())
    part = {
        "dp02_dc2_catalogs.Object": PartitionedTableConfig(
            director_key="objectId", num_stripes=340, num_sub_stripes_per_stripe=3
        )
    }
    print(f"{'query':<22} {'chunks':>7} {'estimate ms':>12} {'parse+check+estimate ms':>24}")
    worst = 0.0
    for name, text in QUERIES.items():
        checked = adql.check(adql.parse(text), catalog, text=text)
        est = estimate(checked, part)
        alone = median_ms(lambda c=checked: estimate(c, part))
        whole = median_ms(lambda t=text: estimate(adql.check(adql.parse(t), catalog, text=t), part))
        worst = max(worst, whole)
        print(f"{name:<22} {est.chunks:>7} {alone:>12.3f} {whole:>24.3f}")
    print(f"worst median, parse+check+estimate: {worst:.3f} ms (target < 5 ms)")


if __name__ == "__main__":
    main()
