"""Human output of the ``ranch`` command: aligned tables and short times."""

from __future__ import annotations

import json
from typing import Any, List, Optional, Sequence


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, right: Sequence[bool] = ()) -> str:
    """``rows`` under ``headers``, columns padded to their widest cell;
    a column with ``right[i]`` true (numbers) is aligned to the right."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines: List[str] = []
    for n, row in enumerate(cells):
        parts = [
            cell.rjust(widths[i]) if i < len(right) and right[i] else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def pairs(items: Sequence[Sequence[Any]]) -> str:
    """``name  value`` lines, names padded to the longest."""
    width = max((len(str(name)) for name, _ in items), default=0)
    return "\n".join(f"{str(name).ljust(width)}  {'-' if value is None else value}" for name, value in items)


def ago(when: Optional[float], now: float) -> str:
    """``when`` as time before ``now`` (``"3.2s ago"``, ``"4m ago"``); ``"never"`` for ``None``."""
    if when is None:
        return "never"
    return f"{span(now - when)} ago" if when <= now else f"in {span(when - now)}"


def span(seconds: float) -> str:
    """A duration in the largest unit that keeps it short: ``0.25s``, ``42s``, ``7m``, ``3h``, ``2d``."""
    seconds = max(seconds, 0.0)
    if seconds < 10:
        return f"{seconds:.2g}s" if seconds < 1 else f"{seconds:.1f}s"
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def dumps(value: Any) -> str:
    """JSON as the command prints it (sorted keys, two-space indent)."""
    return json.dumps(value, indent=2, sort_keys=True)
