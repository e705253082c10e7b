"""The IVOA lyonetia ADQL validation queries, read at test time from the shared corpus.

The corpus is GPL-3 test data kept outside the repository (``../shared/adql-corpus``); we read it,
never copy it.  Duplicates (the same text under another file) are skipped so that each query is
counted once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
INDEX = SHARED / "adql-corpus" / "lyonetia-index.jsonl"


@dataclass(frozen=True)
class CorpusQuery:
    file: str
    uuid: str
    valid: bool
    description: str
    udfs: tuple[str, ...]
    adql: str

    @property
    def test_id(self) -> str:
        return f"{self.file}:{self.uuid[:8]}"


@cache
def _load() -> tuple[CorpusQuery, ...]:
    if not SHARED.is_dir():
        raise FileNotFoundError(
            f"The shared folder is missing: expected {SHARED} next to the repository, holding"
            " adql-corpus/lyonetia-index.jsonl (the IVOA lyonetia ADQL corpus the tests read)."
        )
    if not INDEX.is_file():
        raise FileNotFoundError(
            f"The lyonetia ADQL corpus is missing: expected {INDEX}. The tests read it from the"
            " 'shared' folder next to the repository (shared/adql-corpus/lyonetia-index.jsonl)."
        )
    queries = []
    with INDEX.open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            if row["duplicate_of"] is not None:
                continue
            queries.append(
                CorpusQuery(
                    file=row["file"],
                    uuid=row["uuid"],
                    valid=bool(row["valid"]),
                    description=row["description"],
                    udfs=tuple(row["udfs"]),
                    adql=row["adql"],
                )
            )
    return tuple(queries)


def queries(*, valid: bool | None = None) -> Iterator[CorpusQuery]:
    """The distinct queries of the corpus, optionally only the valid (or invalid) ones."""
    for query in _load():
        if valid is None or query.valid == valid:
            yield query
