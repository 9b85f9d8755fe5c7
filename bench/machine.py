"""What machine a benchmark ran on, recorded beside its figures in every result JSON."""

from __future__ import annotations

import os
import platform


def machine_info(**versions: str) -> dict:
    """Platform, Python, cores and processor, plus the library versions the benchmark names."""
    return {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(), **versions}
