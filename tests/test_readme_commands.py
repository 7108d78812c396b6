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


def test_ci_runs_the_readme_test_command_and_cites_its_section() -> None:
    test_command = commands()[1].split("&&")[-1].strip()
    assert test_command == "python3 -m nox -s tests lint typecheck"
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert ci_lines[-1] == test_command
    cited = re.search(r'README\.md, section "([^"]+)"', ci_lines[-2])
    assert cited, ci_lines[-2]
    headings = re.findall(r"^#+ (.+)$", README, flags=re.M)
    assert cited.group(1) in headings
    section = README.split(f"## {cited.group(1)}", 1)[1].split("\n## ", 1)[0]
    assert commands()[1] in section


def test_readme_test_command_needs_no_sudo_as_root(tmp_path: Path) -> None:
    """Every privileged step is ``$(command -v sudo) ...``: empty where sudo is missing."""
    steps = [step.strip() for step in commands()[1].split("&&")]
    apt_steps = [step for step in steps if "apt-get" in step]
    assert apt_steps and all(step.startswith("$(command -v sudo) apt-get ") for step in apt_steps)
    assert not any(step.startswith("sudo ") for step in steps)
    # Evaluated by sh on a PATH without sudo, the prefix vanishes and apt-get runs as is.
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "apt-get").write_text('#!/bin/sh\necho "apt-get $*"\n')
    (fake_bin / "apt-get").chmod(0o755)
    for step in apt_steps:
        run = subprocess.run(
            ["/bin/sh", "-c", step], env={"PATH": str(fake_bin)}, capture_output=True, text=True, timeout=30
        )
        assert run.returncode == 0, run.stderr
        assert run.stdout.startswith("apt-get "), run.stdout
    # With sudo on the PATH, the same step goes through it.
    (fake_bin / "sudo").write_text('#!/bin/sh\necho "sudo $*"\n')
    (fake_bin / "sudo").chmod(0o755)
    run = subprocess.run(
        ["/bin/sh", "-c", apt_steps[0]],
        env={"PATH": str(fake_bin)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.stdout.startswith(f"sudo {fake_bin}/apt-get ") or run.stdout.startswith("sudo apt-get "), (
        run.stdout
    )


def test_readme_links_migrating_and_it_exists() -> None:
    assert "(MIGRATING.md)" in README
    assert (ROOT / "MIGRATING.md").is_file()


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
    # The worker runs while the flood is sent: under CI load it has run some bulk calls
    # before the interactive ones are queued (249 of 300 once), so plain is "most of it".
    assert plain > 150 and fair <= 20
    assert run.stdout.count("every call ran exactly once") == 2


def test_core_readme_shows_the_limits_scenario_as_it_prints() -> None:
    """The limits output in ranch-core's README has the headline and table the code prints today."""
    from ranch_core.demo import LimitsRun, LimitsWorkload, format_limits_report
    from ranch_core.demo.limits_report import headline

    core = (ROOT / "packages" / "ranch-core" / "README.md").read_text()
    block = core.split("$ ranch-demo --scenario limits --chart ranch-limits.png\n", 1)[1].split("\n```", 1)[0]
    lines = block.splitlines()
    workload = LimitsWorkload()
    assert lines[:2] == headline(workload, 8).splitlines()
    table = format_limits_report(workload, LimitsRun("free", []), LimitsRun("limited", [])).splitlines()
    assert lines[3:6] == table[:3]
    assert [line.split()[0] for line in lines[6:12]] == workload.keys
    assert "every call ran exactly once, every control held" in block
    assert "#see-it-ranch-demo---scenario-limits" in README
    assert "\n### See it: `ranch-demo --scenario limits`\n" in core
