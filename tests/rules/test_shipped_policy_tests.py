from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.rules.policy_file import parse_policy
from sandbox.rules.policytest import run_policy_tests
from tests.support import ROOT

SHIPPED = sorted((ROOT / "policies").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_policy_passes_its_own_tests(path: Path) -> None:
    document = parse_policy(path.read_bytes(), path.name)
    assert len(document.tests) >= 3, "each policy carries at least 3 example histories"
    results = run_policy_tests(document)
    failures = [f"{result.name}: {failure}" for result in results for failure in result.failures]
    assert failures == []
    assert len(results) == len(document.tests)
