"""The mutation score of a finished ``mutmut run`` (``nox -s mutation``), per module and in all.

    python scripts/mutation_score.py packages/ranch-core [--min 90] [--equivalents MUTANTS.md]

Reads mutmut's per-module results (``mutants/src/**/*.py.meta``). The raw score
is killed (a test failed, or the mutant hung until the timeout) over every
mutant, so a mutant no test reaches counts as surviving. Survivors are listed by
name; those the equivalents file (``packages/ranch-core/MUTANTS.md``) lists as
equivalent are marked, and the score after equivalents leaves them out (names
after its "## Not killed" heading are marked as known, and stay in the score). Exits 1 if the raw
score is under ``--min`` or a mutant was not checked.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Dict, List

#: mutmut's exit codes (mutmut/stats.py): 1 and 3 are kills, the timeouts count as kills too.
KILLED = {1, 3, 36, -24, 24, 152, 255}
SURVIVED = {0}
NO_TESTS = {5, 33}


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", type=Path, help="the directory mutmut ran in")
    parser.add_argument("--min", type=float, default=90.0, help="the lowest raw score that passes")
    parser.add_argument("--equivalents", type=Path, help="a file naming the equivalent mutants")
    args = parser.parse_args(argv[1:])

    listed, open_cases = set(), set()
    if args.equivalents and args.equivalents.is_file():
        # Names before a "## Not killed" heading are equivalent; names after it are known open cases.
        equivalent_part, _, open_part = args.equivalents.read_text().partition("\n## Not killed")
        listed = set(re.findall(r"`([\w.ǁ]+__mutmut_\d+)`", equivalent_part))
        open_cases = set(re.findall(r"`([\w.ǁ]+__mutmut_\d+)`", open_part))

    per_module: Dict[str, List[int]] = {}
    survivors: List[str] = []
    equivalent = since = 0  # survivors listed as equivalent, and as killed by tests added since
    unchecked = 0
    for meta in sorted((args.package / "mutants").rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if not codes:
            continue
        module = str(meta.relative_to(args.package / "mutants"))[: -len(".py.meta")]
        counts = per_module.setdefault(module, [0, 0])
        for name, code in sorted(codes.items()):
            counts[1] += 1
            if code in KILLED:
                counts[0] += 1
            elif code is None:
                unchecked += 1
            else:
                kind = "no test reaches it" if code in NO_TESTS else f"exit code {code}"
                if code in SURVIVED:
                    kind = "survived"
                mark = "equivalent (MUTANTS.md)" if name in listed else "NOT LISTED"
                equivalent += name in listed and name not in open_cases
                if name in open_cases:
                    mark = "listed as not killed (MUTANTS.md)"
                    since += 1
                survivors.append(f"  {name}: {kind}, {mark}")

    killed = sum(k for k, _ in per_module.values())
    total = sum(n for _, n in per_module.values())
    for module, (k, n) in per_module.items():
        print(f"{module:42} {k:4}/{n:<4} {100.0 * k / n:6.1f}%")
    raw = 100.0 * killed / total if total else 0.0
    print(f"{'all':42} {killed:4}/{total:<4} {raw:6.1f}%  (raw; gate >= {args.min:.0f} %)")
    if total - equivalent:
        after = 100.0 * killed / (total - equivalent)
        print(f"{'all, equivalent mutants left out':42} {killed:4}/{total - equivalent:<4} {after:6.1f}%")
        if since:
            both = 100.0 * (killed + since) / (total - equivalent)
            label = "and the kills of tests added since"
            print(f"{label:42} {killed + since:4}/{total - equivalent:<4} {both:6.1f}%")
    if survivors:
        print(f"{len(survivors)} surviving mutants (mutmut show NAME for the diff):")
        print("\n".join(survivors))
    if unchecked:
        print(f"{unchecked} mutants not checked: the run did not finish")
    return 1 if raw < args.min or unchecked else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
