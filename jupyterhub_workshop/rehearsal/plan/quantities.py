"""Memory and CPU amounts as people write them in JupyterHub and Kubernetes settings."""

from __future__ import annotations

import math
import re

KIB, MIB, GIB, TIB = 1024, 1024**2, 1024**3, 1024**4

_MEMORY = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kKmMgGtT]?)(i?)([bB]?)\s*$")
_MEMORY_UNITS = {"": GIB, "k": KIB, "m": MIB, "g": GIB, "t": TIB}


def parse_memory(text: str | int | float) -> int:
    """Bytes from ``7G``, ``7Gi``, ``7GB``, ``512M``, ``1.5T`` or a bare number of GiB.

    Units are binary whatever the spelling, as in JupyterHub's ``mem_guarantee`` and
    ``mem_limit`` (``7G`` there is 7 x 1024**3 bytes), so a guarantee copied from the hub's
    configuration means the same here.
    """
    if isinstance(text, (int, float)):
        value, unit = float(text), ""
    else:
        m = _MEMORY.match(str(text))
        if not m or (m.group(3) and not m.group(2)):
            raise ValueError(f"{text!r} is not a memory size (expected e.g. 7G, 512M, 1.5T)")
        value, unit = float(m.group(1)), m.group(2).lower()
    if value < 0:
        raise ValueError(f"{text!r}: memory cannot be negative")
    return int(round(value * _MEMORY_UNITS[unit]))


def parse_cpu(text: str | int | float) -> float:
    """CPUs from ``1.75``, ``2`` or Kubernetes millicores ``500m``."""
    s = str(text).strip()
    try:
        value = float(s[:-1]) / 1000 if s.endswith("m") else float(s)
    except ValueError:
        raise ValueError(f"{text!r} is not a CPU amount (expected e.g. 1.75 or 500m)") from None
    if value < 0 or not math.isfinite(value):
        raise ValueError(f"{text!r}: CPU cannot be negative")
    return value


def format_memory(n: float) -> str:
    if abs(n) >= GIB:
        return f"{n / GIB:.1f} GiB"
    return f"{n / MIB:.0f} MiB"


def format_cpu(c: float) -> str:
    return f"{c:.2f}"


def chart_memory(n: int) -> str:
    """Bytes as z2jh's ``singleuser.memory`` takes them (JupyterHub's binary units): ``2G``
    when whole GiB, else whole MiB rounded up (``576M``)."""
    if n % GIB == 0:
        return f"{n // GIB}G"
    return f"{math.ceil(n / MIB)}M"


# Kubernetes' own quantities (what the API returns: pod resources, metrics.k8s.io usage). Unlike
# JupyterHub's settings above, a bare number is bytes and "M"/"G" are decimal, as Kubernetes reads them.
_KUBE = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*([a-zA-Z]*)\s*$")
_KUBE_SUFFIXES = {
    "": 1,
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": KIB,
    "Mi": MIB,
    "Gi": GIB,
    "Ti": TIB,
    "Pi": 1024**5,
    "Ei": 1024**6,
}


def kube_quantity(text: str | int | float) -> float:
    """A Kubernetes quantity as a number: ``123456Ki`` → 126418944, ``12m`` → 0.012,
    ``250000n`` → 0.00025, ``1e9`` → 1e9, ``2G`` → 2e9 (decimal, as Kubernetes reads it)."""
    if isinstance(text, (int, float)):
        return float(text)
    m = _KUBE.match(str(text))
    if not m or m.group(2) not in _KUBE_SUFFIXES:
        raise ValueError(f"{text!r} is not a Kubernetes quantity (expected e.g. 123456Ki, 12m, 2Gi)")
    return float(m.group(1)) * _KUBE_SUFFIXES[m.group(2)]
