"""ROUGE scoring of generated summaries (server-side post-processing, DESIGN section 6)."""

from __future__ import annotations

import re
from functools import lru_cache

from rouge_score import rouge_scorer

from common.metrics import ROUGE_METRICS

# rougeLsum scores summary-level LCS over sentences separated by newlines. NLTK's sentence tokenizer would
# need its punkt data downloaded at run time, which offline servers cannot do, so split on sentence-final
# punctuation followed by whitespace and a capital/digit instead: good enough for English summaries.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")


def split_sentences(text: str) -> str:
    """Put each sentence of ``text`` on its own line (what rougeLsum expects).

    Args:
        text: Free text.

    Returns:
        The text with one sentence per line.
    """
    return "\n".join(s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip())


@lru_cache(maxsize=1)
def _scorer() -> rouge_scorer.RougeScorer:
    """The shared scorer (building it loads the stemmer once)."""
    return rouge_scorer.RougeScorer(list(ROUGE_METRICS), use_stemmer=True)


def rouge_scores(output: str, reference: str) -> dict[str, float]:
    """ROUGE-1/2/L/Lsum F-measures of ``output`` against ``reference``.

    Args:
        output: Generated text.
        reference: Reference text.

    Returns:
        Metric name -> F-measure in [0, 1]; all 0.0 when either text is empty (nothing was summarized).
    """
    if not output.strip() or not reference.strip():
        return dict.fromkeys(ROUGE_METRICS, 0.0)
    scores = _scorer().score(split_sentences(reference), split_sentences(output))
    return {name: float(scores[name].fmeasure) for name in ROUGE_METRICS}
