"""How much memory a model may take here: a budget, a quarter of the machine's memory unless
VAE_EXPLORER_MEMORY_BUDGET says otherwise, against which every model is weighed from its config
before anything is allocated (`registry` makes the estimates)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .config.base import ConfigError

ENV = "VAE_EXPLORER_MEMORY_BUDGET"
DEFAULT_FRACTION = 0.25
_FALLBACK = 2 * 2**30  # when the machine's memory cannot be found out
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def machine_memory() -> int | None:
    """Physical memory in bytes, or the container's limit when that is smaller."""
    sizes = []
    try:
        sizes.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        pass
    for limit in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            sizes.append(int(Path(limit).read_text().strip()))
        except (OSError, ValueError):
            continue
    sizes = [s for s in sizes if 0 < s < 2**60]
    return min(sizes) if sizes else None


def parse_size(text: str) -> int:
    """'2G', '512M', '1500000000' (bytes) or '0.5' (a fraction of the machine's memory)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)i?b?\s*", text.lower())
    if not match:
        raise ConfigError(f"{ENV}: expected a size such as 4G or 512M, or a fraction such as 0.5; got {text!r}")
    number, unit = float(match.group(1)), match.group(2)
    if not unit and number < 1:
        return int(number * (machine_memory() or _FALLBACK / DEFAULT_FRACTION))
    return int(number * _UNITS[unit])


def memory_budget() -> int:
    """The bytes a model may take: $VAE_EXPLORER_MEMORY_BUDGET, else a quarter of the machine's
    memory (read at each call, so it can be changed for a test or a server)."""
    text = os.environ.get(ENV)
    if text:
        return parse_size(text)
    memory = machine_memory()
    return int(memory * DEFAULT_FRACTION) if memory else _FALLBACK


def format_bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def over_budget(need: int, what: str) -> str | None:
    """Why `what`, needing about `need` bytes, may not be done here, or None when it may."""
    budget = memory_budget()
    if need <= budget:
        return None
    return (f"{what} needs about {format_bytes(need)} of memory, more than this server's budget of "
            f"{format_bytes(budget)} (set {ENV}, e.g. 8G, to change it)")
