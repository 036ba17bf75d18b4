"""``python manage.py run_scheduler``: the scheduler loop (dispatch, health sweep, leases, retries).

Several replicas may run at once: claims use ``SELECT ... FOR UPDATE SKIP LOCKED``. SIGTERM/SIGINT finish the
current pass and exit cleanly.

By default the scheduler also scores stored results (ROUGE, statistics) in a thread of its own
(:class:`results.scoring.ScoringThread`), so that a deployment with one scheduler, and the demo, need no other
process; ``--no-scoring`` or ``RUCKUS_SCHEDULER_SCORING=false`` leave that to dedicated ``run_scoring_worker``
processes. With ``--once`` the results waiting are scored after the pass, in this thread.
"""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

import structlog
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from results.scoring import ScoringThread, score_all_pending
from scheduling.loop import Observation, scheduler_pass

log = structlog.get_logger(__name__)


class Command(BaseCommand):
    """Run the scheduler until SIGTERM/SIGINT."""

    help = "Dispatch pending jobs to capable agents, detect lost agents, expire leases and retry."

    def add_arguments(self, parser: Any) -> None:
        """Command-line options."""
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between passes (default 1)")
        parser.add_argument("--once", action="store_true", help="run a single pass and exit")
        parser.add_argument(
            "--scoring", action=argparse.BooleanOptionalAction, default=None,
            help="also score stored results in a thread (default: RUCKUS_SCHEDULER_SCORING, on unless set false)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Loop until asked to stop."""
        stop = threading.Event()

        def _stop(signum: int, frame: Any) -> None:
            log.info("scheduler_stopping", signal=signum)
            stop.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        scoring = settings.RUCKUS_SCHEDULER_SCORING if options["scoring"] is None else options["scoring"]
        log.info("scheduler_started", interval=options["interval"], scoring=scoring)
        scorer = ScoringThread() if scoring and not options["once"] else None
        if scorer is not None:
            scorer.start()
        # Agents' silence counts only from when this process began watching (DESIGN: the server does not blame
        # agents for its own outages); a failed pass (database down) starts the count again.
        observation = Observation()
        failing = False
        while not stop.is_set():
            close_old_connections()  # long-running process: drop connections the database closed
            try:
                sent = scheduler_pass(observation=observation)
                if sent:
                    log.info("scheduler_dispatched", jobs=sent)
                if failing:
                    log.info("scheduler_recovered", observing_since=str(observation.since))
                failing = False
            except Exception:  # one bad pass must not kill the scheduler; the next pass retries
                observation.interrupt()
                if not failing:  # one traceback per outage, not one per pass
                    log.exception("scheduler_pass_failed")
                failing = True
            if options["once"]:
                break
            stop.wait(options["interval"])
        if options["once"] and scoring:
            score_all_pending()
        if scorer is not None:
            scorer.stop()  # finishes the batch it holds: a result half-scored would only be scored again
        close_old_connections()
        log.info("scheduler_stopped")
