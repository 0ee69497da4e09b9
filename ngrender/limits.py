"""Resource limits checked before the work starts: the machine's memory and the device's limits, each with
advice on what to change, instead of a MemoryError, a validation error or a compile that runs for minutes."""
from __future__ import annotations

import os

from .errors import ConfigError

# A baked MLP becomes literal constants in the shader: about 70 bytes of GLSL per weight, and lavapipe's JIT
# time grows faster than the code (a 256x8 MLP, 500k weights, was 35 MB of GLSL and ran past 120 s at 3 GB).
# The largest default network (NeRF: density + colour MLPs, 64 wide) has about 14k weights.
MAX_BAKED_WEIGHTS = 1 << 16
MAX_SIDE = 1 << 17  # the largest frame side in pixels (scene files, --size, the renderer)


def available_memory() -> int:
    """Bytes of memory the machine can give without swapping (MemAvailable), or a large number if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return 1 << 62


def gib(nbytes: float) -> str:
    return f"{nbytes / 2**30:.2f} GiB"


def check_host_memory(nbytes: int, what: str, advice: str) -> None:
    """Refuse work that needs more memory than the machine has available."""
    free = available_memory()
    if nbytes > free:
        raise ConfigError(f"{what} needs about {gib(nbytes)} of memory and {gib(free)} is available; "
                          f"use {advice}")


def check_device_buffer(nbytes: int, limit: int, what: str, advice: str) -> None:
    """Refuse a buffer (or a binding of one) larger than the device allows."""
    if nbytes > limit:
        raise ConfigError(f"{what} takes {nbytes:,} bytes, over this device's limit of {limit:,}; {advice}")
