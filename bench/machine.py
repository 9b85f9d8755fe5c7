"""What machine a benchmark ran on, recorded beside its figures in every result JSON."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path


def machine_info(**versions: str) -> dict:
    """Platform, Python, cores and processor, plus the library versions the benchmark names."""
    return {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(), **versions}


def write_result(res: dict, out: Path | None) -> None:
    """Print a result as JSON and, given ``out``, write it there too (the benchmarks' one way to report)."""
    text = json.dumps(res, indent=1)
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
