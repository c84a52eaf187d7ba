"""Peak-memory measurement shared by the benchmarks (Linux): reset the peak RSS, run, read the new peak."""

from __future__ import annotations

__all__ = ["peak_rss", "reset_peak_rss"]


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak_rss() -> int:
    """Reset the process's peak RSS (``clear_refs`` 5) and return the current RSS in bytes."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_kib("VmRSS") * 1024


def peak_rss() -> int:
    """Peak RSS in bytes since the last :func:`reset_peak_rss` (``VmHWM``)."""
    return _status_kib("VmHWM") * 1024
