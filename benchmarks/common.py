"""What several benchmarks share: a demo catalog built with the real CLI, and server RSS."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def ensure_demo(data_dir: Path, objects: int, forced_per_object: int = 2) -> None:
    """Build the demo catalog in ``data_dir`` unless one is there (``--data-dir`` reuse)."""
    if (data_dir / "catalog.duckdb").exists():
        return
    env = {**os.environ, "TAP_DATA_DIR": str(data_dir)}
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "tap_service.cli", "demo", "--objects", str(objects),
         "--forced-per-object", str(forced_per_object)],
        env=env, check=True,
    )  # fmt: skip
    print(f"catalog: {objects:,} objects built in {time.perf_counter() - start:.1f} s")


def rss_kib(pid: int) -> int:
    """Resident set size of a process, in KiB (0 once it has gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0
