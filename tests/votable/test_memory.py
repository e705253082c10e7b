"""Memory stays bounded by the batch, not by the number of rows written."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pyarrow as pa
import pytest

from tap_service.votable import Field, make_writer

FIELDS = [
    Field(name="id", datatype="long"),
    Field(name="ra", datatype="double"),
    Field(name="flux", datatype="float"),
    Field(name="ok", datatype="boolean"),
    Field(name="band", datatype="char", arraysize="*"),
]


def _batch(rows: int) -> pa.RecordBatch:
    rng = np.random.default_rng(17)
    nulls = rng.random(rows) < 0.1
    return pa.record_batch(
        [
            pa.array(rng.integers(0, 2**62, rows)),
            pa.array(rng.random(rows), mask=nulls),
            pa.array(rng.random(rows).astype(np.float32)),
            pa.array(rng.random(rows) < 0.5, mask=nulls),
            pa.array(np.array(["g", "r", "i"], dtype=object)[rng.integers(0, 3, rows)]),
        ],
        names=[field.name for field in FIELDS],
    )


@pytest.mark.slow
@pytest.mark.parametrize("response_format", ["votable", "votable/td", "csv"])
def test_peak_memory_independent_of_row_count(response_format: str) -> None:
    batch = _batch(16384)

    def peak(batches: int) -> int:
        writer = make_writer(response_format, FIELDS)
        tracemalloc.start()
        try:
            writer.begin()
            written = 0
            for _ in range(batches):
                written += len(writer.write_batch(batch))
            writer.end()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(4), peak(120)  # 65 thousand vs 2 million rows
    assert large < small * 1.5 + (1 << 20)
    assert large < 32 << 20
