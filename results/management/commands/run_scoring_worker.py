"""``python manage.py run_scoring_worker``: score stored results (ROUGE, run means, statistics) off the request path.

Any number of workers may run at once, here and on other hosts: each claims results with ``SELECT ... FOR UPDATE
SKIP LOCKED`` (:mod:`results.scoring`). ``--processes N`` runs N worker processes under this one (scoring is CPU
work: one process per core), restarting any that dies; a result a dead worker held is scored by another. SIGTERM or
SIGINT finish the current batch and exit. ``--once`` scores everything waiting and exits (tests, scripts).
"""

from __future__ import annotations

import multiprocessing
import signal
import threading
from typing import Any

import structlog
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from results.scoring import SCORING_BATCH, SCORING_IDLE_S, run_scoring, score_all_pending

log = structlog.get_logger(__name__)

#: Seconds a stopping worker process gets to finish its batch before it is killed.
STOP_GRACE_S = 30.0
#: Seconds between checks that the worker processes are alive.
SUPERVISE_S = 1.0


def _worker_process(batch: int, idle_s: float) -> None:
    """Body of one worker process: score until SIGTERM (SIGINT is the parent's to handle)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    log.info("scoring_worker_started", batch=batch)
    scored = run_scoring(stop, batch=batch, idle_s=idle_s)
    log.info("scoring_worker_stopped", scored=scored)


class Command(BaseCommand):
    """Score stored results until SIGTERM/SIGINT."""

    help = "Score stored results (ROUGE, run means, statistics): the results queue's worker."

    def add_arguments(self, parser: Any) -> None:
        """Command-line options."""
        parser.add_argument("--processes", type=int, default=1,
                            help="worker processes (default 1; one per core scores fastest)")
        parser.add_argument("--batch", type=int, default=SCORING_BATCH,
                            help=f"results claimed per transaction (default {SCORING_BATCH})")
        parser.add_argument("--idle", type=float, default=SCORING_IDLE_S,
                            help=f"seconds to wait when nothing is waiting (default {SCORING_IDLE_S})")
        parser.add_argument("--once", action="store_true", help="score every result waiting now, then exit")

    def handle(self, *args: Any, **options: Any) -> None:
        """Run the worker(s)."""
        processes, batch, idle_s = options["processes"], options["batch"], options["idle"]
        if processes < 1:
            raise CommandError(f"--processes must be at least 1, not {processes}")
        if batch < 1:
            raise CommandError(f"--batch must be at least 1, not {batch}")
        if idle_s <= 0:
            raise CommandError(f"--idle must be a positive number of seconds, not {idle_s}")
        if options["once"]:
            scored = score_all_pending(limit=batch)
            self.stdout.write(f"scored {scored} result(s)")
            return
        stop = threading.Event()

        def _stop(signum: int, frame: Any) -> None:
            log.info("scoring_stopping", signal=signum)
            stop.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        if processes == 1:
            log.info("scoring_worker_started", batch=batch)
            scored = run_scoring(stop, batch=batch, idle_s=idle_s)
            log.info("scoring_worker_stopped", scored=scored)
            return
        self._supervise(stop, processes, batch, idle_s)

    @staticmethod
    def _supervise(stop: threading.Event, processes: int, batch: int, idle_s: float) -> None:
        """Run ``processes`` worker processes until ``stop``, restarting any that dies."""
        # fork: the children start at once with Django set up; they must not share this process's connections.
        context = multiprocessing.get_context("fork")
        connections.close_all()

        def start(index: int) -> multiprocessing.process.BaseProcess:
            child = context.Process(target=_worker_process, args=(batch, idle_s), name=f"ruckus-scoring-{index}")
            child.start()
            return child

        children = [start(k) for k in range(processes)]
        log.info("scoring_workers_started", processes=processes, pids=[c.pid for c in children])
        while not stop.wait(SUPERVISE_S):
            for k, child in enumerate(children):
                if not child.is_alive():
                    # Its transaction rolled back with it: the results it held are waiting again.
                    log.warning("scoring_worker_died", pid=child.pid, exitcode=child.exitcode)
                    children[k] = start(k)
        for child in children:
            if child.is_alive():
                child.terminate()  # SIGTERM: the child finishes its batch
        for child in children:
            child.join(STOP_GRACE_S)
            if child.is_alive():
                log.warning("scoring_worker_killed", pid=child.pid)
                child.kill()
                child.join()
        log.info("scoring_workers_stopped")
