"""``ranch-demo --scenario groups``: a tenant of one user next to a tenant of 60 users,
plain FIFO vs Ranch with flat keys vs Ranch with two-level keys (worker threads on the
in-memory storage, real sleeps).

One real run of each mode is shared by the tests that read its numbers. The issue's
measure: each tenant 50 % +- 4 of the first 100 executions with two-level keys."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import List

import pytest
from ranch_core import demo
from ranch_core.demo import GroupsRun, GroupsWorkload

SMALL = GroupsWorkload({"A": 1, "B": 60}, work_ms=1.0, seconds=0.5, slots=1)


@pytest.fixture(scope="module")
def runs() -> List[GroupsRun]:
    return demo.run_all_groups(SMALL)


def test_two_level_keys_share_by_tenant_and_flat_keys_by_user(runs: List[GroupsRun]) -> None:
    plain, flat, groups = runs
    assert [run.mode for run in runs] == list(demo.GROUPS_MODES)
    assert min(len(run.order) for run in runs) >= 100  # a run lasts until 100 calls started
    for tenant in ("A", "B"):
        assert abs(groups.share(tenant, 100) - 0.5) <= 0.04, groups.to_dict(SMALL)
    assert abs(groups.share("A") - 0.5) <= 0.04
    # Flat: A is one key of 61, in a FIFO fed in turn as with Ranch.
    for run in (plain, flat):
        assert abs(run.share("A", 100) - 1 / 61) <= 0.02, run.to_dict(SMALL)
        assert run.share("B", 100) >= 0.96
    # Two-level: B's users still take turns among themselves (B has 60 of the first 120 or so).
    b_users = [user for tenant, user in groups.order[:130] if tenant == "B"]
    assert sorted(b_users[:60]) == sorted(f"u{n}" for n in range(60))


def test_report_and_json(runs: List[GroupsRun], tmp_path: Path) -> None:
    report = demo.format_groups_report(SMALL, runs)
    assert "Ranch, two-level keys" in report and "Ranch, flat keys" in report and "first 100" in report
    assert "Ranch, two-level keys: A 0.50, B 0.50 of the first 100 executions" in report
    out = io.StringIO()
    path = tmp_path / "numbers.json"
    argv = [
        "--scenario",
        "groups",
        "--seconds",
        "0.1",
        "--members",
        "5",
        "--work-ms",
        "1",
        "--json",
        str(path),
    ]
    assert demo.main(argv, out=out) == 0, out.getvalue()
    numbers = json.loads(path.read_text(encoding="utf-8"))
    assert numbers["scenario"] == "groups" and numbers["workload"]["members"] == {"A": 1, "B": 5}
    assert [run["mode"] for run in numbers["runs"]] == list(demo.GROUPS_MODES)
    assert "'B' 5 users" in out.getvalue() and "1 worker thread," in out.getvalue()


def test_chart(runs: List[GroupsRun], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "groups.png"
    assert demo.write_groups_chart(str(path), SMALL, runs)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_options_are_refused() -> None:
    for argv in (["--seconds", "0"], ["--members", "0"], ["--work-ms", "-1"], ["--redis", "redis://x"]):
        with pytest.raises(SystemExit, match="ranch-demo"):
            demo.main(["--scenario", "groups", *argv], out=io.StringIO())
    with pytest.raises(ValueError, match="mode"):
        demo.run_groups(SMALL, "fifo")
    with pytest.raises(ValueError, match="members"):
        GroupsWorkload({"only": 1})
    with pytest.raises(ValueError, match="members"):
        GroupsWorkload({"A": 1, "B:x": 2})
