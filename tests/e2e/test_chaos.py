"""The chaos run of ``benchmarks/fleet_chaos.py`` in its short mode: faults at random moments, no result lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.fleet_chaos import KINDS, run
from tests.netlab import netlab_or_skip

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_chaos_short_run_loses_and_duplicates_nothing(tmp_path: Path):
    netlab_or_skip(1).close()  # the run builds its own lab: skip (or fail in CI) here when none can be built
    outcome = run(16, seed=1, workdir=tmp_path)
    print(outcome.line())
    assert len(outcome.faults) >= len(KINDS), "the run ended before every kind of fault struck once"
    assert outcome.ok, outcome.line() + "\n" + "\n".join(outcome.faults)
    assert outcome.results == outcome.completed
