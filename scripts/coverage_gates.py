"""Check the coverage gates of the test command against ``coverage json`` output.

    python scripts/coverage_gates.py coverage.json

Gates (issue 17): combined lines >= 95 %; every package >= 95 % lines and
>= 85 % branches; ranch-core >= 97 % lines and >= 93 % branches. Prints one
line per package and exits 1 if a gate is missed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Dict, List, Tuple

#: (lines %, branches %) each package must reach.
GATES: Dict[str, Tuple[float, float]] = {
    "ranch_core": (97.0, 93.0),
    "ranch_redis": (95.0, 85.0),
    "ranch_celery": (95.0, 85.0),
    "ranch_dramatiq": (95.0, 85.0),
}
COMBINED_LINES = 95.0


def package_of(path: str) -> str:
    parts = Path(path).parts
    for name in GATES:
        if name in parts:
            return name
    return ""


def main(argv: List[str]) -> int:
    report = json.loads(Path(argv[1]).read_text())
    totals: Dict[str, List[int]] = {name: [0, 0, 0, 0] for name in GATES}
    for path, data in report["files"].items():
        package = package_of(path)
        if not package:
            continue
        summary = data["summary"]
        counts = totals[package]
        counts[0] += summary["covered_lines"]
        counts[1] += summary["num_statements"]
        counts[2] += summary.get("covered_branches", 0)
        counts[3] += summary.get("num_branches", 0)
    failed = False
    all_covered = all_lines = 0
    print(f"{'package':16} {'lines':>8} {'branches':>9}   gate")
    for package, (covered, lines, bcovered, branches) in totals.items():
        line_pct = 100.0 * covered / lines if lines else 0.0
        branch_pct = 100.0 * bcovered / branches if branches else 100.0
        need_lines, need_branches = GATES[package]
        ok = line_pct >= need_lines and branch_pct >= need_branches
        failed |= not ok
        all_covered += covered
        all_lines += lines
        verdict = "ok" if ok else "MISSED"
        print(
            f"{package:16} {line_pct:7.1f}% {branch_pct:8.1f}%   "
            f">= {need_lines:.0f}/{need_branches:.0f} {verdict}"
        )
    combined = 100.0 * all_covered / all_lines if all_lines else 0.0
    ok = combined >= COMBINED_LINES
    failed |= not ok
    verdict = "ok" if ok else "MISSED"
    print(f"{'combined lines':16} {combined:7.1f}%             >= {COMBINED_LINES:.0f} {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
