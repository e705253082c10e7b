"""A deterministic DP0.2 look-alike: Object, ForcedSource and CcdVisit over the DC2 region.

Everything is generated with numpy, vectorised, from one seed, so a test can regenerate the
same arrays (``generate_objects``, ``generate_ccd_visits``, ``iter_forced_sources``) and compute
expected answers independently of SQL.  Values are meant to look like the real thing to a person
and to exercise the service: objectIds above 2^53, NULL fluxes where a measurement failed,
booleans, negative fluxes on faint sources, timestamps, and light curves with variable objects.

The forced sources are generated in fixed-size blocks of objects, each from its own spawned
random stream, so memory stays bounded at 1,000,000 objects (20 million forced sources) and the
result does not depend on how the caller consumes them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from tap_service.felis.model import FelisSchema, load_felis
from tap_service.services.demo_obscore import build_obscore
from tap_service.storage.embedded import EmbeddedDatabase, qualified, quote

DEMO_SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schema" / "dp02_demo.yaml"
SCHEMA_NAME = "dp02_dc2_catalogs"

BANDS = ("u", "g", "r", "i", "z", "y")
RA_RANGE = (50.0, 75.0)
DEC_RANGE = (-45.0, -27.0)
OBJECT_ID_BASE = 1_249_537_790_362_800_000
"""DP0.2 objectIds are around 1.25e18, well above 2^53: doubles cannot hold them exactly."""
FORCED_SOURCE_ID_BASE = 1_400_000_000_000_000_000
VISIT_ID_BASE = 159_000
N_VISITS = 2_000
DETECTORS_PER_VISIT = 9
MJD_START = 59_580.0
SURVEY_DAYS = 5 * 365.25
EXPOSURE_S = 30.0
NJY_ZERO_POINT = 31.4
"""AB magnitude of 1 nJy: flux_nJy = 10**((31.4 - mag) / 2.5)."""

# 5-sigma point-source depths (AB mag) for the coadd and for one visit, per band.
_COADD_DEPTH = np.array([26.1, 27.4, 27.5, 26.8, 26.1, 24.9])
_VISIT_DEPTH = np.array([23.9, 25.0, 24.7, 24.0, 23.3, 22.1])
_BAND_WEIGHTS = np.array([0.07, 0.10, 0.22, 0.22, 0.20, 0.19])
_FORCED_BLOCK = 25_000
"""Objects per forced-source block; part of the definition of the data (changing it changes the
random streams), not a tuning knob."""

FloatArray = npt.NDArray[np.float64]


@dataclass
class DemoTable:
    """Column arrays in stored order; ``nulls[name]`` is True where the value is NULL."""

    name: str
    columns: dict[str, npt.NDArray[Any]]
    nulls: dict[str, npt.NDArray[np.bool_]] = field(default_factory=dict)

    @property
    def num_rows(self) -> int:
        return len(next(iter(self.columns.values())))

    def to_arrow(self) -> pa.Table:
        arrays = {}
        for name, values in self.columns.items():
            mask = self.nulls.get(name)
            arrays[name] = pa.array(values, mask=mask) if mask is not None else pa.array(values)
        return pa.table(arrays)

    def masked(self, name: str) -> np.ma.MaskedArray[Any, Any]:
        """The column with NULLs masked, for computing expected query answers."""
        return np.ma.masked_array(
            self.columns[name], mask=self.nulls.get(name, np.zeros(self.num_rows, bool))
        )


@dataclass
class DemoObjects:
    """The Object table plus the hidden truth the forced photometry is drawn from."""

    table: DemoTable
    true_flux: FloatArray
    """(n_objects, 6) noiseless mean flux per band, nJy."""
    extended: npt.NDArray[np.bool_]
    var_amplitude: FloatArray
    """Fractional amplitude of a sinusoidal light curve (0 for constant objects)."""
    var_period: FloatArray
    var_phase: FloatArray


@dataclass(frozen=True)
class DemoCounts:
    objects: int
    forced_sources: int
    ccd_visits: int
    seconds: float


def _rngs(seed: int, n: int) -> list[np.random.Generator]:
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]


def _mag_to_njy(mag: FloatArray) -> FloatArray:
    return np.power(10.0, (NJY_ZERO_POINT - mag) / 2.5)


def _sigma_njy(depth_mag: FloatArray) -> FloatArray:
    """1-sigma flux noise for a 5-sigma depth."""
    return _mag_to_njy(depth_mag) / 5.0


def sky_position_to_tract_patch(
    ra: FloatArray, dec: FloatArray
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """A DC2-like skymap: tracts of ~1.7° in declination rings, 7×7 patches each."""
    size = 1.7
    row = np.floor((dec - DEC_RANGE[0]) / size)
    width = size / np.cos(np.radians(row * size + DEC_RANGE[0] + size / 2))
    col = np.floor((ra - RA_RANGE[0]) / width)
    tract = (2_723 + row * 40 + col).astype(np.int64)
    fx = np.clip(((ra - RA_RANGE[0]) / width - col) * 7, 0, 6.999)
    fy = np.clip(((dec - DEC_RANGE[0]) / size - row) * 7, 0, 6.999)
    patch = (np.floor(fy) * 7 + np.floor(fx)).astype(np.int64)
    return tract, patch


def generate_objects(n_objects: int = 100_000, seed: int = 42) -> DemoObjects:
    """The Object table, sorted by coord_dec (DuckDB's zone maps then prune cone searches)."""
    rng = _rngs(seed, 3)[0]
    n = n_objects
    ra = rng.uniform(*RA_RANGE, n)
    sin_lo, sin_hi = np.sin(np.radians(DEC_RANGE))
    dec = np.degrees(np.arcsin(rng.uniform(sin_lo, sin_hi, n)))  # uniform on the sphere
    order = np.argsort(dec, kind="stable")
    ra, dec = ra[order], dec[order]

    # Number counts rising as 10^(0.3 m) between r = 17 and 27.
    lo, hi = 10 ** (0.3 * 17.0), 10 ** (0.3 * 27.0)
    r_mag = np.log10(rng.uniform(lo, hi, n)) / 0.3
    colours = np.stack(
        [
            rng.normal(1.0, 0.4, n),  # u - g
            rng.normal(0.6, 0.3, n),  # g - r
            rng.normal(0.3, 0.2, n),  # r - i
            rng.normal(0.15, 0.1, n),  # i - z
            rng.normal(0.05, 0.1, n),  # z - y
        ]
    )
    mags = np.empty((n, 6))
    mags[:, 2] = r_mag
    mags[:, 1] = r_mag + colours[1]
    mags[:, 0] = mags[:, 1] + colours[0]
    mags[:, 3] = r_mag - colours[2]
    mags[:, 4] = mags[:, 3] - colours[3]
    mags[:, 5] = mags[:, 4] - colours[4]
    true_flux = _mag_to_njy(mags)

    extended = rng.random(n) < 0.3 + 0.6 * (r_mag - 17.0) / 10.0
    ids = OBJECT_ID_BASE + np.cumsum(rng.integers(1, 1_000, n, dtype=np.int64))
    tract, patch = sky_position_to_tract_patch(ra, dec)
    ref_band = np.where(rng.random(n) < 0.8, "i", np.where(rng.random(n) < 0.75, "r", "g")).astype(
        object
    )

    columns: dict[str, npt.NDArray[Any]] = {
        "objectId": ids,
        "coord_ra": ra,
        "coord_dec": dec,
        "detect_isPrimary": rng.random(n) < 0.9,
        "detect_isIsolated": rng.random(n) < 0.7,
        "tract": tract,
        "patch": patch,
        "refBand": ref_band,
        "refExtendedness": extended.astype(np.float64),
    }
    nulls: dict[str, npt.NDArray[np.bool_]] = {"refExtendedness": rng.random(n) < 0.02}

    psf_fraction = np.where(extended, 0.6, 1.0)
    sky = _sigma_njy(_COADD_DEPTH)
    for b, band in enumerate(BANDS):
        flux = true_flux[:, b]
        err = np.sqrt(sky[b] ** 2 + (0.01 * flux) ** 2 + flux * 0.5)
        psf_flag = rng.random(n) < (0.05 if band == "u" else 0.02)
        psf_null = psf_flag & (rng.random(n) < 0.6)
        columns[f"{band}_psfFlux"] = flux * psf_fraction + rng.normal(0.0, 1.0, n) * err
        columns[f"{band}_psfFluxErr"] = err
        columns[f"{band}_psfFlux_flag"] = psf_flag
        nulls[f"{band}_psfFlux"] = psf_null
        nulls[f"{band}_psfFluxErr"] = psf_null
        cmodel_flag = rng.random(n) < 0.03
        columns[f"{band}_cModelFlux"] = flux + rng.normal(0.0, 1.2, n) * err
        columns[f"{band}_cModel_flag"] = cmodel_flag
        nulls[f"{band}_cModelFlux"] = cmodel_flag & (rng.random(n) < 0.5)

    variable = (~extended) & (rng.random(n) < 0.1)
    amplitude = np.where(variable, rng.uniform(0.1, 0.5, n), 0.0)
    period = rng.uniform(0.3, 30.0, n)
    phase = rng.uniform(0.0, 2 * np.pi, n)
    return DemoObjects(
        table=DemoTable("Object", columns, nulls),
        true_flux=true_flux,
        extended=extended,
        var_amplitude=amplitude,
        var_period=period,
        var_phase=phase,
    )


def mjd_to_datetime64(mjd: FloatArray) -> npt.NDArray[np.datetime64]:
    micros = np.round((mjd - 40_587.0) * 86_400e6).astype(np.int64)
    return micros.astype("datetime64[us]")


def generate_ccd_visits(seed: int = 42) -> DemoTable:
    """N_VISITS visits × DETECTORS_PER_VISIT detectors, ordered by observation time."""
    rng = _rngs(seed, 3)[1]
    v = N_VISITS
    band_index = rng.choice(6, size=v, p=_BAND_WEIGHTS)
    start_mjd = np.sort(rng.uniform(MJD_START, MJD_START + SURVEY_DAYS, v))
    visit_id = VISIT_ID_BASE + np.cumsum(rng.integers(1, 40, v, dtype=np.int64))
    center_ra = rng.uniform(*RA_RANGE, v)
    center_dec = rng.uniform(*DEC_RANGE, v)
    seeing = np.clip(rng.normal(0.8, 0.15, v), 0.45, None)
    zenith = rng.uniform(5.0, 55.0, v)

    d = DETECTORS_PER_VISIT
    detectors = np.sort(np.argsort(rng.random((v, 189)), axis=1)[:, :d], axis=1).astype(np.int64)
    rep = np.repeat(np.arange(v), d)
    det = detectors.ravel()
    # Detectors sit on a 0.2°-pitch grid around the boresight.
    offset_x = (det % 14 - 6.5) * 0.2
    offset_y = (det // 14 - 6.5) * 0.2
    dec = center_dec[rep] + offset_y
    ra = center_ra[rep] + offset_x / np.cos(np.radians(dec))
    bands = np.array(BANDS, dtype=object)[band_index[rep]]
    obs_start = start_mjd[rep]
    mid = obs_start + EXPOSURE_S / 2 / 86_400.0
    sky_bg = rng.uniform(200.0, 2_000.0, v * d).astype(np.float32)
    columns: dict[str, npt.NDArray[Any]] = {
        "ccdVisitId": visit_id[rep] * 256 + det,
        "visitId": visit_id[rep],
        "detector": det,
        "band": bands,
        "physical_filter": np.char.add(bands.astype(str), "_sim_1.4").astype(object),
        "ra": ra,
        "decl": dec,
        "expTime": np.full(v * d, EXPOSURE_S),
        "expMidpt": mjd_to_datetime64(mid),
        "expMidptMJD": mid,
        "obsStart": mjd_to_datetime64(obs_start),
        "obsStartMJD": obs_start,
        "seeing": seeing[rep],
        "zeroPoint": (31.4 + rng.normal(0.0, 0.05, v * d)).astype(np.float32),
        "skyBg": sky_bg,
        "skyNoise": np.sqrt(sky_bg).astype(np.float32),
        "zenithDistance": zenith[rep].astype(np.float32),
    }
    return DemoTable("CcdVisit", columns)


def iter_forced_sources(
    objects: DemoObjects,
    ccd_visits: DemoTable,
    *,
    n_forced_per_object: int = 20,
    seed: int = 42,
) -> Iterator[DemoTable]:
    """ForcedSource in blocks of objects, ordered by objectId then observation time.

    Each object gets ``n_forced_per_object`` distinct visits spread over the survey (a light
    curve), measured on one of the visit's detectors; fluxes vary for the variable objects.
    """
    n_objects = objects.table.num_rows
    k = min(n_forced_per_object, N_VISITS)
    block_seed = int(_rngs(seed, 3)[2].integers(0, 2**63))
    block_rngs = _rngs(block_seed, max(1, -(-n_objects // _FORCED_BLOCK)))
    stride = max(1, N_VISITS // max(k, 1))
    ccd_ids = ccd_visits.columns["ccdVisitId"]
    ccd_mjd = ccd_visits.columns["expMidptMJD"]
    ccd_band = ccd_visits.columns["band"]
    band_of = {b: i for i, b in enumerate(BANDS)}
    ccd_band_index = np.array([band_of[b] for b in ccd_band[::DETECTORS_PER_VISIT]])
    visit_sigma = _sigma_njy(_VISIT_DEPTH)
    obj = objects.table.columns
    for block, rng in enumerate(block_rngs):
        lo = block * _FORCED_BLOCK
        hi = min(n_objects, lo + _FORCED_BLOCK)
        n = hi - lo
        if n <= 0 or k == 0:
            break
        start = rng.integers(0, N_VISITS, n)
        visit_idx = np.sort((start[:, None] + np.arange(k)[None, :] * stride) % N_VISITS, axis=1)
        det_choice = rng.integers(0, DETECTORS_PER_VISIT, (n, k))
        ccd_idx = (visit_idx * DETECTORS_PER_VISIT + det_choice).ravel()
        obj_idx = np.repeat(np.arange(lo, hi), k)
        band_idx = ccd_band_index[visit_idx.ravel()]
        mjd = ccd_mjd[ccd_idx]

        mean_flux = objects.true_flux[obj_idx, band_idx]
        psf_fraction = np.where(objects.extended[obj_idx], 0.6, 1.0)
        wave = objects.var_amplitude[obj_idx] * np.sin(
            2 * np.pi * mjd / objects.var_period[obj_idx] + objects.var_phase[obj_idx]
        )
        flux_now = mean_flux * psf_fraction * (1.0 + wave)
        sigma = visit_sigma[band_idx]
        err = np.sqrt(sigma**2 + (0.005 * flux_now) ** 2 + np.abs(flux_now) * 0.5)
        m = n * k
        flag = rng.random(m) < 0.01
        null_flux = flag & (rng.random(m) < 0.5)
        rows = np.arange(lo * k, hi * k, dtype=np.int64)
        columns: dict[str, npt.NDArray[Any]] = {
            "forcedSourceId": FORCED_SOURCE_ID_BASE + rows,
            "objectId": obj["objectId"][obj_idx],
            "ccdVisitId": ccd_ids[ccd_idx],
            "band": ccd_band[ccd_idx],
            "psfFlux": flux_now + rng.normal(0.0, 1.0, m) * err,
            "psfFluxErr": err,
            "psfFlux_flag": flag,
            "psfDiffFlux": mean_flux * psf_fraction * wave + rng.normal(0.0, 1.4, m) * err,
            "psfDiffFluxErr": err * 1.4,
            "coord_ra": obj["coord_ra"][obj_idx],
            "coord_dec": obj["coord_dec"][obj_idx],
            "tract": obj["tract"][obj_idx],
            "patch": obj["patch"][obj_idx],
            "detect_isPrimary": obj["detect_isPrimary"][obj_idx],
        }
        nulls = {"psfFlux": null_flux, "psfFluxErr": null_flux}
        yield DemoTable("ForcedSource", columns, nulls)


@dataclass
class DemoData:
    objects: DemoObjects
    ccd_visits: DemoTable
    forced_sources: DemoTable


def generate_demo_data(
    n_objects: int = 100_000, n_forced_per_object: int = 20, seed: int = 42
) -> DemoData:
    """Everything ``build_demo_catalog`` stores, in memory (tests; keep n_objects small)."""
    objects = generate_objects(n_objects, seed)
    ccd = generate_ccd_visits(seed)
    blocks = list(
        iter_forced_sources(objects, ccd, n_forced_per_object=n_forced_per_object, seed=seed)
    )
    forced = DemoTable(
        "ForcedSource",
        {name: np.concatenate([b.columns[name] for b in blocks]) for name in blocks[0].columns},
        {name: np.concatenate([b.nulls[name] for b in blocks]) for name in blocks[0].nulls},
    )
    return DemoData(objects, ccd, forced)


def build_demo_catalog(
    db: EmbeddedDatabase,
    *,
    n_objects: int = 100_000,
    n_forced_per_object: int = 20,
    seed: int = 42,
    schema: FelisSchema | None = None,
) -> DemoCounts:
    """Create and fill the demo tables and publish them in TAP_SCHEMA, in one transaction.

    Rebuilding replaces the three tables (same seed → identical contents).
    """
    started = time.perf_counter()
    felis = schema or load_felis(DEMO_SCHEMA_PATH)
    objects = generate_objects(n_objects, seed)
    ccd = generate_ccd_visits(seed)
    forced_rows = 0
    with db.transaction() as cur:
        db.publish_in(cur, felis, replace_tables=True)
        _append(cur, felis, objects.table)
        _append(cur, felis, ccd)
        build_obscore(db, cur, ccd)  # ivoa.ObsCore, derived from CcdVisit
        for block in iter_forced_sources(
            objects, ccd, n_forced_per_object=n_forced_per_object, seed=seed
        ):
            _append(cur, felis, block)
            forced_rows += block.num_rows
    with db.cursor() as cur:
        cur.execute("CHECKPOINT")
    return DemoCounts(
        objects=objects.table.num_rows,
        forced_sources=forced_rows,
        ccd_visits=ccd.num_rows,
        seconds=time.perf_counter() - started,
    )


def _append(cur: Any, schema: FelisSchema, table: DemoTable) -> None:
    felis_table = schema.table(table.name)
    names = [c.name for c in felis_table.columns]
    missing = set(names) ^ set(table.columns)
    if missing:
        raise ValueError(f"{table.name}: generated columns differ from Felis: {sorted(missing)}")
    source = table.to_arrow()
    view = f"__demo_{table.name}"
    cur.register(view, source)
    try:
        column_list = ", ".join(quote(n) for n in names)
        cur.execute(
            f"INSERT INTO {qualified(schema.name, table.name)} ({column_list}) "
            f"SELECT {column_list} FROM {quote(view)}"
        )
    finally:
        cur.unregister(view)


def table_checksums(db: EmbeddedDatabase) -> Mapping[str, str]:
    """An order-independent digest per demo table (determinism checks, benchmarks)."""
    result: dict[str, str] = {}
    for name in ("Object", "ForcedSource", "CcdVisit"):
        row = db.query(
            f"SELECT count(*) AS n, bit_xor(hash(t)) AS h FROM {qualified(SCHEMA_NAME, name)} t"
        ).to_pylist()[0]
        result[name] = f"{row['n']}:{row['h']}"
    return result
