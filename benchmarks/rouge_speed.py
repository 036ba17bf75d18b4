"""How many results per second the server's ROUGE scoring keeps up with: ``rouge-score`` as it was called, and now.

A result here is what a summarization job sends: 3 runs x 5 samples, each an output of about 300 words scored against
a reference of about 300 words (Wikipedia articles from the packaged data set, joined to that length). The outputs
copy and edit their reference the way small summarization models do (a quarter of the words replaced, some sentences
dropped), so the LCS tables and their backtracks have realistic work.

Rows (each scoring the same results, so their figures agree):

- ``rouge-score, one sample at a time``: ``RougeScorer(...).score(reference, output)`` per sample, as the result
  callback did before scoring left the request.
- ``results.rouge, references repeat``: :func:`results.rouge.rouge_scores_many` per result, the scoring worker's
  call. Every job of an experiment is scored against the same articles, so the prepared references are cached after
  the first job; the outputs differ from run to run (sampling), so each is prepared and scored.
- ``results.rouge, cold caches``: the same with every cache emptied before each result (nothing ever repeats).
- ``results.rouge, greedy outputs``: the three runs of a job repeat the same outputs (greedy decoding): the pair
  cache answers runs 2 and 3.
- ``... x N processes``: N processes score results side by side (``run_scoring_worker --processes N``).

Run: ``.venv/bin/python benchmarks/rouge_speed.py [--results 40] [--processes 2]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from rouge_score import rouge_scorer  # noqa: E402 - after the repository is importable

from agent_runtime.paths import packaged_wiki_summaries  # noqa: E402
from common.metrics import ROUGE_METRICS  # noqa: E402
from results import rouge  # noqa: E402

RUNS, SAMPLES, WORDS = 3, 5, 300

#: A result: its (output, reference) pairs, run after run.
Result = list[tuple[str, str]]


def _articles() -> list[str]:
    """The packaged Wikipedia summaries (stand-in sentences when the data set is not installed)."""
    path = packaged_wiki_summaries()
    if path is not None:
        return [a["extract"] for a in json.loads(path.read_text()).values()]
    rng = random.Random(0)
    words = ["city", "river", "capital", "largest", "population", "century", "empire", "music", "science", "art"]
    return [" ".join(rng.choice(words) for _ in range(80)).capitalize() + "." for _ in range(500)]


def _text(rng: random.Random, articles: Sequence[str], words: int) -> str:
    """About ``words`` words: whole articles joined until the length is reached."""
    parts: list[str] = []
    while sum(len(p.split()) for p in parts) < words:
        parts.append(rng.choice(articles))
    return " ".join(parts)


def _summary_of(rng: random.Random, reference: str, vocabulary: Sequence[str]) -> str:
    """An output that copies its reference with edits: a quarter of the words replaced, a few sentences dropped."""
    sentences = [s for s in rouge.split_sentences(reference).split("\n") if rng.random() > 0.15]
    words = " ".join(sentences).split()
    for _ in range(len(words) // 4):
        words[rng.randrange(len(words))] = rng.choice(vocabulary)
    while len(words) < WORDS:  # keep ~300 words: what was dropped is made up elsewhere
        words += rng.choice(vocabulary).split()
    return " ".join(words)


def make_results(count: int, *, seed: int = 1, greedy: bool = False) -> list[Result]:
    """``count`` results of a job each: 3 runs x 5 samples over the same 5 articles (the experiment's samples).

    Args:
        count: Results (jobs).
        seed: Random seed (the same seed gives the same texts).
        greedy: The runs of a job repeat their outputs (greedy decoding), else each run's outputs differ.

    Returns:
        The results.
    """
    rng = random.Random(seed)
    articles = _articles()
    vocabulary = " ".join(rng.sample(articles, 50)).split()
    references = [_text(rng, articles, WORDS) for _ in range(SAMPLES)]
    results = []
    for _ in range(count):
        first = [_summary_of(rng, r, vocabulary) for r in references]
        runs = [first if greedy or k == 0 else [_summary_of(rng, r, vocabulary) for r in references]
                for k in range(RUNS)]
        results.append([(out, ref) for run in runs for out, ref in zip(run, references, strict=True)])
    return results


_SCORER = rouge_scorer.RougeScorer(list(ROUGE_METRICS), use_stemmer=True)


def score_with_rouge_score(result: Result) -> list[dict[str, float]]:
    """One result scored as before: ``rouge-score`` per sample."""
    out = []
    for output, reference in result:
        scores = _SCORER.score(rouge.split_sentences(reference), rouge.split_sentences(output))
        out.append({name: float(scores[name].fmeasure) for name in ROUGE_METRICS})
    return out


def score_with_results_rouge(result: Result) -> list[dict[str, float]]:
    """One result scored as the scoring worker does."""
    return rouge.rouge_scores_many(result)


def score_cold(result: Result) -> list[dict[str, float]]:
    """One result scored with every cache emptied first."""
    rouge.clear_caches()
    return rouge.rouge_scores_many(result)


def _timed(score: Callable[[Result], list[dict[str, float]]], results: Sequence[Result]) -> tuple[float, float]:
    """Wall-clock and CPU seconds to score ``results`` one after the other."""
    started, cpu = time.perf_counter(), time.process_time()
    for result in results:
        score(result)
    return time.perf_counter() - started, time.process_time() - cpu


def _pool_worker(args: tuple[str, list[Result]]) -> float:
    """In a pool process: score a share of the results; return the CPU seconds it took."""
    name, share = args
    return _timed(SCORERS[name], share)[1]


SCORERS: dict[str, Callable[[Result], list[dict[str, float]]]] = {
    "rouge-score": score_with_rouge_score,
    "results.rouge": score_with_results_rouge,
    "cold": score_cold,
}


def _parallel(name: str, results: Sequence[Result], processes: int) -> tuple[float, float]:
    """Wall-clock and total CPU seconds for ``processes`` processes to score ``results`` (a share each)."""
    shares = [list(results[k::processes]) for k in range(processes)]
    context = multiprocessing.get_context("fork")
    with context.Pool(processes) as pool:
        started = time.perf_counter()
        cpu = pool.map(_pool_worker, [(name, share) for share in shares])
        return time.perf_counter() - started, sum(cpu)


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--results", type=int, default=40, help="results per row (default 40)")
    parser.add_argument("--baseline-results", type=int, default=4,
                        help="results for the rouge-score row (slow; default 4)")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1,
                        help="processes of the parallel rows (default: the CPUs)")
    args = parser.parse_args()

    distinct = make_results(args.results)
    greedy = make_results(args.results, greedy=True, seed=2)
    # The figures agree (the tests check every figure on many more texts).
    assert score_with_results_rouge(distinct[0]) == score_with_rouge_score(distinct[0])
    assert score_cold(greedy[0]) == score_with_rouge_score(greedy[0])

    rows: list[tuple[str, int, int, tuple[float, float]]] = []  # (label, processes, results, (wall s, CPU s))
    baseline = distinct[: args.baseline_results]
    rows.append(("rouge-score, one sample at a time (before)", 1, len(baseline), _timed(score_with_rouge_score,
                                                                                          baseline)))
    if args.processes > 1:
        rows.append(("rouge-score, one sample at a time (before)", args.processes, len(baseline) * 2,
                     _parallel("rouge-score", distinct[: len(baseline) * 2], args.processes)))
    rouge.clear_caches()
    rows.append(("results.rouge, references repeat", 1, len(distinct), _timed(score_with_results_rouge, distinct)))
    rows.append(("results.rouge, cold caches", 1, len(distinct), _timed(score_cold, distinct)))
    rouge.clear_caches()
    rows.append(("results.rouge, greedy outputs", 1, len(greedy), _timed(score_with_results_rouge, greedy)))
    if args.processes > 1:
        rouge.clear_caches()
        rows.append(("results.rouge, references repeat", args.processes, len(distinct),
                     _parallel("results.rouge", distinct, args.processes)))
        rows.append(("results.rouge, cold caches", args.processes, len(distinct),
                     _parallel("cold", distinct, args.processes)))

    base_cpu = rows[0][3][1] / rows[0][2]
    print(f"ROUGE-1/2/L/Lsum of results of {RUNS} runs x {SAMPLES} samples, ~{WORDS}-word outputs and references "
          f"({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end)")
    print("results/s: wall clock (other load on the host lowers it); CPU ms/result: the work itself; per core: "
          "1000 / CPU ms, what each core given to scoring keeps up with")
    print(f"{'scoring':<45} {'processes':>9} {'results':>8} {'results/s':>10} {'CPU ms/result':>14} "
          f"{'per core/s':>11} {'speed-up':>9}")
    for label, processes, count, (wall, cpu) in rows:
        per_result = cpu / count
        print(f"{label:<45} {processes:>9} {count:>8} {count / wall:>10.1f} {1000 * per_result:>14.1f} "
              f"{1 / per_result:>11.1f} {base_cpu / per_result:>8.1f}x")


if __name__ == "__main__":
    main()
