"""The two README commands: CI runs the test command, and the demo command works as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def commands() -> list[str]:
    return re.findall(r"```sh\n(.+?)\n```", README, flags=re.S)


def test_ci_runs_the_readme_test_command() -> None:
    test_command = commands()[1].split("&&")[-1].strip()
    assert test_command == "python3 -m nox -s tests lint typecheck"
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert ci_lines[-1] == test_command


def test_readme_demo_command_shows_the_flood_served_fairly() -> None:
    demo_command = commands()[0].split("&&")[-1].strip()
    assert demo_command == "python3 -m ranch_celery.demo"
    run = subprocess.run(
        [sys.executable, "-m", "ranch_celery.demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr
    match = re.search(
        r"worst wait of an interactive call: (\d+) executions \(plain\) vs (\d+) \(fair\)", run.stdout
    )
    assert match, run.stdout
    plain, fair = int(match.group(1)), int(match.group(2))
    assert plain > 250 and fair <= 20
    assert run.stdout.count("every call ran exactly once") == 2
