"""Suite-wide settings."""

import os
from collections.abc import Iterator
from typing import Any

import pytest

# DP noise is drawn from fresh OS entropy by default (dpgenome.synthesize.NOISE_SEED_ENV);
# the suite derives it from each configuration's seed, so that its runs are reproducible
# (tests that need the default unset it)
os.environ.setdefault("DPGENOME_NOISE_SEED", "seed")

#: CI sets this where it installed the reference tools: a comparison with plink2, GEMMA,
#: tabix or Chromium skipped for want of the tool is then a failure, not a quiet skip
REQUIRE_TOOLS = os.environ.get("DPGENOME_REQUIRE_TOOLS") == "1"
_TOOL_MISSING = ("is not on PATH", "not found on PATH", "console script is not installed")


@pytest.fixture(autouse=True)
def _own_lifetime_ledger(tmp_path_factory: pytest.TempPathFactory, monkeypatch: Any) -> None:
    """Every test's default lifetime ledger is its own (release, export and synthesize charge
    $DPGENOME_LIFETIME_DB, else ~/.dpgenome/lifetime.sqlite): never the user's."""
    path = tmp_path_factory.mktemp("lifetime") / "lifetime.sqlite"
    monkeypatch.setenv("DPGENOME_LIFETIME_DB", str(path))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if REQUIRE_TOOLS and report.skipped and call.excinfo is not None:
        reason = str(call.excinfo.value)
        if any(marker in reason for marker in _TOOL_MISSING):
            report.outcome = "failed"
            report.longrepr = f"DPGENOME_REQUIRE_TOOLS=1, but: {reason}"
