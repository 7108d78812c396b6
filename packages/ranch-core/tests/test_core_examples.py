"""The custom-queue examples run and show fairness."""

from __future__ import annotations

import asyncio
import runpy
from collections import Counter
from pathlib import Path
from typing import Any, Dict

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def load(name: str) -> Dict[str, Any]:
    return runpy.run_path(str(EXAMPLES / name))


def test_asyncio_pool_serves_quiet_tenants_within_a_round() -> None:
    order = asyncio.run(load("asyncio_pool.py")["run"](workers=4, flood=2000))
    assert len(order) == 2009 and order.count("bulk") == 2000
    for tenant in ("alice", "bob", "carol"):
        assert max(i for i, key in enumerate(order) if key == tenant) < 16


def test_thread_pool_weights_and_no_loss() -> None:
    result = load("thread_pool.py")["run"](threads=8, per_tenant=300)
    served = result["served"]
    assert len(served) + result["expired"] == 3 * 300 + 20
    assert result["status"]["served_total"] == len(served)
    # Over a stretch where all three tenants wait, vip (weight 0.5) gets ~2x.
    first = Counter(served[:400])
    assert first["vip"] > 1.6 * first["free"] and first["vip"] > 1.6 * first["batch"]


def test_examples_run_as_scripts(capsys: Any) -> None:
    runpy.run_path(str(EXAMPLES / "asyncio_pool.py"), run_name="__main__")
    assert "alice: all 3 jobs done by position" in capsys.readouterr().out
