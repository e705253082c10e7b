"""``ivoa.ObsCore`` for the demo: one row per processed visit image (visit × detector).

Rows are derived, deterministically, from the demo's CcdVisit table: every fifth visit with all
its detectors (a few thousand rows).  ``s_region`` is the detector footprint as ObsCore 1.1
wants it, an STC-S string ``POLYGON ICRS ra1 dec1 ... ra4 dec4`` (xtype ``adql:REGION``); the
embedded dialect parses it for ADQL CONTAINS/INTERSECTS;
``access_url`` is the DataLink ``{links}`` URL of the row's ``obs_publisher_did``, made from the
configured base URL when the catalog is built (rebuild after changing it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote as url_quote

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from tap_service.config import Config
from tap_service.felis.model import FelisSchema, load_felis
from tap_service.storage.embedded import EmbeddedDatabase, qualified, quote

if TYPE_CHECKING:  # demo_catalog calls this module: no import cycle at run time
    from tap_service.services.demo_catalog import DemoTable

OBSCORE_SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schema" / "dp02_obscore.yaml"
VISIT_STRIDE = 5
DETECTOR_HALF_SIZE_DEG = 0.1
DID_PREFIX = "ivo://tap-service.demo/dp02?calexp/"
# LSST filter band edges (m), rounded from the published throughput curves.
BAND_EDGES = {
    "u": (320e-9, 400e-9),
    "g": (400e-9, 552e-9),
    "r": (552e-9, 691e-9),
    "i": (691e-9, 818e-9),
    "z": (818e-9, 922e-9),
    "y": (922e-9, 1060e-9),
}


@dataclass
class ObsCoreRows:
    """Column arrays in stored order (``nulls[name]`` True where NULL) and the footprints
    (flattened vertex lists, the numbers of ``s_region``)."""

    columns: dict[str, npt.NDArray[Any]]
    regions: list[list[float]]
    nulls: dict[str, npt.NDArray[np.bool_]] = field(default_factory=dict)

    @property
    def num_rows(self) -> int:
        return len(self.regions)

    def to_arrow(self) -> pa.Table:
        arrays = {
            name: pa.array(values, mask=self.nulls.get(name))
            for name, values in self.columns.items()
        }
        arrays["s_region"] = pa.array([stcs_polygon(r) for r in self.regions], pa.string())
        return pa.table(arrays)


def publisher_did(ccd_visit_id: int) -> str:
    return f"{DID_PREFIX}{ccd_visit_id}"


def ccd_visit_from_did(did: str) -> int | None:
    """The ccdVisitId a publisher DID names (None when it is not one of ours)."""
    if not did.startswith(DID_PREFIX):
        return None
    tail = did[len(DID_PREFIX) :]
    return int(tail) if tail.isdigit() and len(tail) <= 18 else None


def stcs_polygon(vertices: list[float]) -> str:
    """``POLYGON ICRS ra1 dec1 ...``: the STC-S form ObsCore 1.1 gives s_region (repr digits,
    so the numbers read back exactly)."""
    return "POLYGON ICRS " + " ".join(repr(v) for v in vertices)


def footprints(ra: npt.NDArray[Any], dec: npt.NDArray[Any]) -> list[list[float]]:
    """Four-vertex footprints (counter-clockwise on the sky), flattened DALI lists."""
    h = DETECTOR_HALF_SIZE_DEG
    dx = h / np.cos(np.radians(dec))
    corners = np.stack(
        [ra - dx, dec - h, ra + dx, dec - h, ra + dx, dec + h, ra - dx, dec + h], axis=1
    )
    corners[:, 0::2] %= 360.0
    return [[float(v) for v in row] for row in corners]


def generate_obscore(ccd: DemoTable, base_url: str) -> ObsCoreRows:
    """The ObsCore rows derived from the demo's CcdVisit table."""
    c = ccd.columns
    visit_ids = np.unique(c["visitId"])
    chosen = np.isin(c["visitId"], visit_ids[::VISIT_STRIDE])
    n = int(chosen.sum())
    ccd_ids = c["ccdVisitId"][chosen]
    visits = c["visitId"][chosen]
    detectors = c["detector"][chosen]
    bands = c["band"][chosen]
    ra, dec = c["ra"][chosen], c["decl"][chosen]
    start = c["obsStartMJD"][chosen]
    exptime = c["expTime"][chosen]
    dids = [publisher_did(int(i)) for i in ccd_ids]
    links = base_url.rstrip("/") + "/api/datalink/links?ID="
    lo = np.array([BAND_EDGES[b][0] for b in bands])
    hi = np.array([BAND_EDGES[b][1] for b in bands])

    def text(value: str) -> npt.NDArray[Any]:
        return np.full(n, value, dtype=object)

    columns: dict[str, npt.NDArray[Any]] = {
        "dataproduct_type": text("image"),
        "dataproduct_subtype": text("lsst.calexp"),
        "obs_title": np.array(
            [
                f"calexp visit {v} detector {d} band {b}"
                for v, d, b in zip(visits, detectors, bands, strict=True)
            ],
            dtype=object,
        ),
        "facility_name": text("Rubin:Simonyi"),
        "calib_level": np.full(n, 2, dtype=np.int32),
        "target_name": text(""),
        "obs_id": np.array(
            [f"{v}-{d}" for v, d in zip(visits, detectors, strict=True)], dtype=object
        ),
        "obs_collection": text("LSST.DP02"),
        "obs_publisher_did": np.array(dids, dtype=object),
        "access_url": np.array([links + url_quote(d, safe="") for d in dids], dtype=object),
        "access_format": text("application/x-votable+xml;content=datalink"),
        "access_estsize": np.full(n, 2, dtype=np.int64),
        "s_ra": ra,
        "s_dec": dec,
        "s_fov": np.full(n, 2 * np.sqrt(2) * DETECTOR_HALF_SIZE_DEG),
        "s_resolution": c["seeing"][chosen],
        "s_xel1": np.full(n, 4072, dtype=np.int64),
        "s_xel2": np.full(n, 4000, dtype=np.int64),
        "t_xel": np.ones(n, dtype=np.int64),
        "t_min": start,
        "t_max": start + exptime / 86_400.0,
        "t_exptime": exptime,
        "t_resolution": exptime,
        "em_xel": np.ones(n, dtype=np.int64),
        "em_min": lo,
        "em_max": hi,
        "em_res_power": (lo + hi) / 2 / (hi - lo),
        "o_ucd": text("phot.count"),
        "pol_states": text(""),
        "pol_xel": np.zeros(n, dtype=np.int64),
        "instrument_name": text("LSSTCam-imSim"),
        "lsst_visit": visits,
        "lsst_detector": detectors,
        "lsst_ccdvisitid": ccd_ids,
        "lsst_band": bands,
        "lsst_filter": c["physical_filter"][chosen],
    }
    nulls = {
        "target_name": np.ones(n, dtype=bool),
        "pol_states": np.ones(n, dtype=bool),
    }
    return ObsCoreRows(columns, footprints(ra, dec), nulls)


def build_obscore(
    db: EmbeddedDatabase, cur: Any, ccd: DemoTable, *, config: Config | None = None
) -> int:
    """Create, fill and publish ivoa.ObsCore in the caller's transaction; returns the row count."""
    from tap_service.services.descriptors import datalink_base_url

    schema: FelisSchema = load_felis(OBSCORE_SCHEMA_PATH)
    rows = generate_obscore(ccd, datalink_base_url(config or Config()))
    db.publish_in(cur, schema, replace_tables=True)
    name = qualified(schema.name, "ObsCore")
    arrow = rows.to_arrow()
    names = [c.name for c in schema.table("ObsCore").columns]
    view = "__demo_obscore"
    cur.register(view, arrow)
    try:
        column_list = ", ".join(quote(n) for n in names)
        cur.execute(f"INSERT INTO {name} ({column_list}) SELECT {column_list} FROM {quote(view)}")
    finally:
        cur.unregister(view)
    return rows.num_rows
