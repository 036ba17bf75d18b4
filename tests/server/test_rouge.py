"""ROUGE as the server computes it (results.rouge) is exactly rouge-score's, on real and random texts."""

from __future__ import annotations

import json
import random

import pytest
from rouge_score import rouge_scorer

from agent_runtime.paths import packaged_wiki_summaries
from common.metrics import ROUGE_METRICS
from results.rouge import clear_caches, rouge_scores, rouge_scores_many, split_sentences


def reference_scores(output: str, reference: str) -> dict[str, float]:
    """What rouge-score itself says (the definition RUCKUS promises to match exactly)."""
    if not output.strip() or not reference.strip():
        return dict.fromkeys(ROUGE_METRICS, 0.0)
    scorer = rouge_scorer.RougeScorer(list(ROUGE_METRICS), use_stemmer=True)
    scores = scorer.score(split_sentences(reference), split_sentences(output))
    return {name: float(scores[name].fmeasure) for name in ROUGE_METRICS}


def _articles() -> list[str]:
    """Real Wikipedia summaries (the data the summarization task uses) where installed, else stand-ins."""
    path = packaged_wiki_summaries()
    if path is not None:
        data = json.loads(path.read_text())
        return [a["extract"] for a in list(data.values())[:400]]
    words = ["the", "a", "of", "cat", "sat", "mat", "city", "capital", "river", "ran", "running", "runs", "France",
             "Paris", "large", "largest", "is", "was"]
    rng = random.Random(7)
    return [" ".join(rng.choice(words) for _ in range(rng.randint(20, 90))) + "." for _ in range(100)]


def _pairs(seed: int, count: int) -> list[tuple[str, str]]:
    """(output, reference) pairs like a summarization job's: copies with edits, unrelated texts, reorderings."""
    rng = random.Random(seed)
    articles = _articles()

    def text(words: int) -> str:
        parts: list[str] = []
        while sum(len(p.split()) for p in parts) < words:
            parts.append(rng.choice(articles))
        return " ".join(parts)

    out = []
    for _ in range(count):
        reference = text(rng.choice([5, 60, 300]))
        kind = rng.random()
        if kind < 0.4:  # a summary that copies with edits (what small models do)
            words = reference.split()
            for _ in range(len(words) // 4):
                words[rng.randrange(len(words))] = rng.choice(["the", "of", "Paris", "!", "...", "X.", "is"])
            output = " ".join(words)
        elif kind < 0.7:
            output = text(rng.choice([3, 60, 300]))
        else:
            words = reference.split()
            output = " ".join(rng.sample(words, len(words) // 2))
        out.append((output, reference))
    return out


EDGE_CASES = [
    ("the cat sat", "the cat sat"),
    ("the cat", "the cat sat on the mat"),
    ("...", "x"),
    ("! ? .", "A b. C d."),
    ("x. . y", "x y. . x"),
    ("ΟΔΟΣ İstanbul. Naïve café!", "naive cafe. İstanbul"),
    ("Running runs ran. The runner running.", "The runners ran. Running is running."),
    ("", "reference"),
    ("output", "   "),
    ("a " * 400, "a a a b a a"),
]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rouge_figures_are_exactly_rouge_scores(seed):
    pairs = _pairs(seed, 40) + EDGE_CASES
    clear_caches()
    got = rouge_scores_many(pairs)
    assert got == [reference_scores(o, r) for o, r in pairs]
    # Again from the caches (stems, prepared texts, pairs), and one by one: the same figures.
    assert rouge_scores_many(pairs) == got
    assert [rouge_scores(o, r) for o, r in pairs[:10]] == got[:10]


def test_rouge_of_a_batch_does_not_depend_on_its_neighbours():
    pairs = _pairs(4, 30)
    alone = [rouge_scores_many([p])[0] for p in pairs]
    clear_caches()
    assert rouge_scores_many(list(reversed(pairs))) == list(reversed(alone))
