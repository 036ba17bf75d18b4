"""ROUGE scoring of generated summaries (server-side post-processing, DESIGN section 6).

The figures are exactly those of Google's ``rouge-score`` package::

    RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True).score(
        split_sentences(reference), split_sentences(output))

(the tests compare the two on real and random texts), computed much faster:

- **Tokenize once.** ``rouge-score`` tokenizes (and Porter-stems) each text twice: whole for ROUGE-1/2/L, then
  sentence by sentence for ROUGE-Lsum. Here each sentence is tokenized once with ``rouge-score``'s own tokenizer and
  the whole-text tokens are their concatenation (the newline between sentences is a separator to the tokenizer,
  so that is the same list).
- **Cache.** Stems are cached per word (the stemmer is ~20% of the work and a text's words repeat); a prepared
  reference (its tokens, n-grams and LCS bit masks) is cached per text, since every model and agent of an
  experiment is scored against the same articles; a prepared output too, and the scores of an (output, reference)
  pair, since greedy decoding repeats an output run after run.
- **LCS without a Python loop per table cell.** ``rouge-score`` fills its LCS tables cell by cell in Python (300
  words x 300 words: 90,000 cells, three quarters of its time). ROUGE-L needs only the LCS length: it comes from a
  bit-parallel LCS (Allison and Dix; Hyyro: one big-integer step per reference token, :func:`lcs_length`).
  ROUGE-Lsum needs the very LCS that ``rouge-score``'s backtrack picks in each (reference sentence, output
  sentence) table: the same bit-parallel rows give every table of a sample at once, numpy turns them into the
  tables' cells, and the backtrack takes one step of every pair's walk at a time with ``rouge-score``'s rule
  (diagonal on a match, else left when the left cell is larger, else up): :func:`_summary_hits`.
- **Batches.** :func:`rouge_scores_many` scores a result's samples together (the numpy calls are shared), and a
  pair that repeats in the batch once.

ROUGE-1/2 count the same n-grams and do ``rouge_scorer._score_ngrams``' arithmetic on them
(:func:`ngram_fmeasure`), and every F-measure is ``rouge_score.scoring.fmeasure`` of the same integers, so the
floats are identical, not merely close.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

import numpy as np
from nltk.stem import porter
from rouge_score import rouge_scorer, scoring, tokenize

from common.metrics import ROUGE_METRICS

# rougeLsum scores summary-level LCS over sentences separated by newlines. NLTK's sentence tokenizer would
# need its punkt data downloaded at run time, which offline servers cannot do, so split on sentence-final
# punctuation followed by whitespace and a capital/digit instead: good enough for English summaries.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")

#: Distinct words whose stems are kept (a word and its stem: ~150 bytes).
STEM_CACHE_SIZE = 200_000
#: Prepared references kept (~100 KB each for a 300-word text, ~25 KB for a packaged article's 80 words): the
#: articles an experiment's jobs share.
REFERENCE_CACHE_SIZE = 256
#: Prepared outputs kept (the runs of one job, scored in one batch, repeat their outputs under greedy decoding).
OUTPUT_CACHE_SIZE = 64
#: Scores of (output, reference) pairs kept (a job's result scored again, after a failure, costs nothing).
PAIR_CACHE_SIZE = 1024
#: Samples whose ROUGE-Lsum tables are filled together: larger batches cost fewer numpy calls per sample, but the
#: running bit counts (output tokens x reference tokens, per sample: ~300 KB for 300 words each) must stay in the
#: processor's cache for the backtrack's scattered reads.
LSUM_BATCH = 16
#: Most table cells (reference tokens x output tokens) filled at once: 16 samples of 300 words each take 1.5 M. A
#: single pair beyond it (a runaway output of tens of thousands of tokens) is scored sentence pair by sentence pair.
MAX_LSUM_CELLS = 8_000_000


def split_sentences(text: str) -> str:
    """Put each sentence of ``text`` on its own line (what rougeLsum expects).

    Args:
        text: Free text.

    Returns:
        The text with one sentence per line.
    """
    return "\n".join(s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip())


class _CachedStemmer:
    """``rouge-score``'s Porter stemmer (NLTK's, default mode) with a cache per word."""

    def __init__(self) -> None:
        self.stem = lru_cache(maxsize=STEM_CACHE_SIZE)(porter.PorterStemmer().stem)


_STEMMER = _CachedStemmer()


@dataclass(frozen=True)
class PreparedText:
    """A text tokenized as ``rouge-score`` tokenizes it, with what the scores need.

    Attributes:
        sentences: Tokens of each non-empty line (the ROUGE-Lsum sentences; a line may have no token).
        tokens: Tokens of the whole text (the sentences' tokens, concatenated).
        unigrams: Counts of each 1-gram (as ``rouge_scorer._create_ngrams`` makes them).
        bigrams: Counts of each 2-gram.
        masks: Token -> bit mask of its positions in ``tokens`` (for the bit-parallel LCS; references only).
    """

    sentences: tuple[tuple[str, ...], ...]
    tokens: tuple[str, ...]
    unigrams: Counter[tuple[str, ...]]
    bigrams: Counter[tuple[str, ...]]
    masks: dict[str, int]


def prepare(text: str, *, masks: bool = True) -> PreparedText:
    """Tokenize a sentence-split text once, the way ``RougeScorer.score`` tokenizes it.

    Args:
        text: The text, one sentence per line (:func:`split_sentences`).
        masks: Also build the LCS bit masks (needed for the reference side only).

    Returns:
        The prepared text.
    """
    # RougeScorer.score's get_sents: split on newlines, drop empty lines (a line of punctuation stays, tokenless).
    sentences = tuple(tuple(tokenize.tokenize(line, _STEMMER)) for line in text.split("\n") if line)
    tokens = tuple(token for sentence in sentences for token in sentence)
    positions: dict[str, int] = {}
    if masks:
        for position, token in enumerate(tokens):
            positions[token] = positions.get(token, 0) | (1 << position)
    # Counter(zip(...)) counts the same n-grams as rouge_scorer._create_ngrams (a Python loop), in C.
    return PreparedText(
        sentences=sentences,
        tokens=tokens,
        unigrams=Counter(zip(tokens, strict=False)),
        bigrams=Counter(pairwise(tokens)),
        masks=positions,
    )


@lru_cache(maxsize=REFERENCE_CACHE_SIZE)
def _prepared_reference(text: str) -> PreparedText:
    """A reference, prepared once per text (the articles repeat across an experiment's jobs)."""
    return prepare(text)


@lru_cache(maxsize=OUTPUT_CACHE_SIZE)
def _prepared_output(text: str) -> PreparedText:
    """An output, prepared once per text (greedy decoding repeats it run after run)."""
    return prepare(text, masks=False)


def lcs_length(tokens: Sequence[str], masks: dict[str, int], length: int) -> int:
    """Length of the longest common subsequence of ``tokens`` and a text given by its position masks.

    The bit-parallel algorithm of Allison and Dix (1986) as written by Hyyro (2004): bit ``k`` of ``v`` is 1 while
    position ``k`` of the other text does not yet end a longer common subsequence; one addition per token.

    Args:
        tokens: One text's tokens.
        masks: The other text's token -> bit mask of its positions.
        length: The other text's number of tokens.

    Returns:
        The LCS length (what ``rouge_scorer._lcs_table(...)[-1][-1]`` holds).
    """
    full = (1 << length) - 1
    v = full
    for token in tokens:
        match = masks.get(token)
        if match:
            u = v & match
            v = ((v + u) | (v - u)) & full
    return length - v.bit_count()


def ngram_fmeasure(target: Counter[tuple[str, ...]], prediction: Counter[tuple[str, ...]]) -> float:
    """ROUGE-N F-measure: ``rouge_scorer._score_ngrams``'s arithmetic on the same counts, faster.

    ``_score_ngrams`` sums ``min(target[g], prediction[g])`` over every n-gram of the target, each missing one
    through ``Counter.__missing__`` (a Python call); only the n-grams both texts have can count, so only those are
    visited here. The integers are the same, then so are the precision, recall and F-measure.

    Args:
        target: The reference's n-gram counts.
        prediction: The output's n-gram counts.

    Returns:
        The F-measure.
    """
    overlap = sum(min(target[gram], prediction[gram]) for gram in target.keys() & prediction.keys())
    precision = overlap / max(prediction.total(), 1)
    recall = overlap / max(target.total(), 1)
    return float(scoring.fmeasure(precision, recall))


def _fmeasure(hits: int, predicted: int, target: int) -> float:
    """F-measure as ``rouge-score`` computes it from a count of hits (0 when either side is empty)."""
    if not predicted or not target:
        return 0.0
    return float(scoring.fmeasure(hits / predicted, hits / target))


def _summary_hits(batch: Sequence[tuple[PreparedText, PreparedText]]) -> list[int]:
    """ROUGE-Lsum hits of each (output, reference) pair, as ``rouge_scorer._summary_level_lcs`` counts them.

    For every reference sentence, ``rouge-score`` takes the union of the reference positions of one LCS per output
    sentence (the one its ``_backtrack_norec`` reads out of its ``_lcs_table``) and counts each token of the union
    as a hit while both texts have unused occurrences of it left: per token that is min(occurrences in the unions,
    occurrences in the output), since the unions never hold more than the reference has. The same tables and the
    same backtrack are computed here for all pairs at once:

    - One row of a sample's tables for every reference sentence is one big integer over the sample's output
      sentences side by side (the bit-parallel LCS of :func:`lcs_length`, a guard bit after each sentence stopping
      the carries), so a reference token costs one step for all output sentences.
    - Cell ``(i, j)`` of the (reference sentence, output sentence) table is the number of zero bits of row ``i``
      among the sentence's first ``j`` bits: from a running count of the bits (numpy).
    - The backtrack takes one step of every pair's walk at a time (numpy), with ``_backtrack_norec``'s rule.

    Args:
        batch: ``(output, reference)`` pairs, each text with at least one token.

    Returns:
        The hit count of each pair.
    """
    vocabulary: dict[str, int] = {}
    # Output side, per sample: token -> bit mask of its positions, the bits of all sentences, the sentences as
    # (first bit, first token in out_ids, length).
    layouts: list[tuple[dict[int, int], int, list[tuple[int, int, int]]]] = []
    out_ids: list[int] = []
    out_sample: list[int] = []
    n_bytes = 1
    for sample, (output, _) in enumerate(batch):
        masks: dict[int, int] = {}
        bit = every = 0
        sentences = []
        for sentence in output.sentences:
            sentences.append((bit, len(out_ids), len(sentence)))
            for k, token in enumerate(sentence):
                token_id = vocabulary.setdefault(token, len(vocabulary))
                out_ids.append(token_id)
                masks[token_id] = masks.get(token_id, 0) | (1 << (bit + k))
            every |= ((1 << len(sentence)) - 1) << bit
            bit += len(sentence) + 1
        out_sample += [sample] * (len(out_ids) - len(out_sample))
        layouts.append((masks, every, sentences))
        n_bytes = max(n_bytes, bit // 8 + 1)
    # Reference side: the rows of every table (row 0 and one per token of each reference sentence).
    rows: list[bytes] = []
    ref_ids: list[int] = []
    ref_sample: list[int] = []
    pairs: list[tuple[int, int, int, int, int, int]] = []  # (row 0, first token, length, first bit, first out, length)
    for sample, (_, reference) in enumerate(batch):
        masks, every, sentences = layouts[sample]
        for sentence in reference.sentences:
            if not sentence:
                continue
            first_row, first_token = len(rows), len(ref_ids)
            v = every
            row = v.to_bytes(n_bytes, "little")
            rows.append(row)
            for token in sentence:
                token_id = vocabulary.setdefault(token, len(vocabulary))
                ref_ids.append(token_id)
                u = v & masks.get(token_id, 0)
                if u:
                    v = ((v + u) | (v - u)) & every
                    row = v.to_bytes(n_bytes, "little")
                rows.append(row)
            ref_sample += [sample] * len(sentence)
            pairs += [(first_row, first_token, len(sentence), bit, out, n) for bit, out, n in sentences if n]
    if not pairs:
        return [0] * len(batch)
    # bits[k, r]: bit k of row r. Bit by bit, a running count over every row at once (numpy adds whole rows fast;
    # a cumulative sum along each short row is several times slower).
    bits = np.unpackbits(
        np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), n_bytes).T, axis=0, bitorder="little"
    )
    # ones[k, r]: one bits of row r before bit k (16 bits hold the count unless an output has 32,767 tokens)
    ones = np.empty((len(bits) + 1, len(rows)), dtype=np.int16 if len(bits) < 2**15 else np.int32)
    ones[0] = 0
    for k in range(len(bits)):
        np.add(ones[k], bits[k], out=ones[k + 1])
    ones_at = ones.ravel()
    stride = len(rows)
    ref = np.array(ref_ids, dtype=np.int64)
    out = np.array(out_ids, dtype=np.int64)
    row0, ref_first, length, bit0, out_first, width = (
        np.array(column, dtype=np.int64) for column in zip(*pairs, strict=True)
    )
    # Cell (i, j) of a pair's table is j - (ones[bit0 + j, row0 + i] - ones[bit0, row0 + i]): the zero bits of row
    # i among the sentence's first j bits. The walk keeps, for each pair at its cell (i, j): the reference token i
    # and output token j it compares (ref_at, out_at), and the flat indices of ones[bit0 + j - 1, row0 + i]
    # (bit_at) and ones[bit0, row0 + i - 1] (start_at). Then the rule's "left cell larger than the cell above",
    # T(i, j - 1) > T(i - 1, j), reads four counts through views shifted by one bit (row stride) or one row.
    start_at = bit0 * stride + row0 + length - 1
    bit_at = start_at + width * stride - stride + 1
    lcs = width - (ones_at[bit_at + stride] - ones_at[start_at + 1])  # T(length, width)
    alive = lcs > 0  # a pair without a common token adds nothing to the union
    ref_at, out_at = ref_first + length - 1, out_first + width - 1
    state = [x[alive] for x in (ref_at, out_at, bit_at, start_at, ref_first, out_first)]
    ref_at, out_at, bit_at, start_at, ref_first, out_first = state
    one_bit_on = ones_at[stride - 1 :]  # one_bit_on[bit_at] = ones[bit0 + j, row0 + i - 1]
    one_row_on = ones_at[1:]  # one_row_on[start_at] = ones[bit0, row0 + i]
    in_union = np.zeros(len(ref), dtype=bool)
    while len(ref_at):
        match = ref[ref_at] == out[out_at]
        # T(i, j-1) > T(i-1, j)  <=>  (ones[b+j, i-1] - ones[b+j-1, i]) + (ones[b, i] - ones[b, i-1]) > 1
        left = (one_bit_on[bit_at] - ones_at[bit_at]) + (one_row_on[start_at] - ones_at[start_at]) > 1
        in_union[ref_at[match]] = True
        up = match | ~left  # i - 1
        back = match | left  # j - 1
        ref_at -= up
        start_at -= up
        bit_at -= up
        out_at -= back
        bit_at -= back * stride
        alive = (ref_at >= ref_first) & (out_at >= out_first)
        if not alive.all():
            ref_at, out_at, bit_at, start_at, ref_first, out_first = (
                x[alive] for x in (ref_at, out_at, bit_at, start_at, ref_first, out_first)
            )

    # Hits per sample: sum over tokens of min(occurrences in the unions, occurrences in the output), counted on
    # (sample, token) keys (sorted, not a dense samples x vocabulary table: the vocabulary grows with the batch).
    size = len(vocabulary)
    union_keys, union_counts = np.unique(
        np.array(ref_sample, dtype=np.int64)[in_union] * size + ref[in_union], return_counts=True
    )
    output_keys, output_counts = np.unique(np.array(out_sample, dtype=np.int64) * size + out, return_counts=True)
    common, in_unions, in_output = np.intersect1d(union_keys, output_keys, assume_unique=True, return_indices=True)
    hits = np.bincount(
        common // size, weights=np.minimum(union_counts[in_unions], output_counts[in_output]), minlength=len(batch)
    )
    return [int(h) for h in hits]


def _cells(output: PreparedText, reference: PreparedText) -> int:
    """Size of a pair's ROUGE-Lsum tables as :func:`_summary_hits` holds them (rows x bits)."""
    return (len(reference.tokens) + len(reference.sentences)) * (len(output.tokens) + len(output.sentences) + 8)


def _lsum_chunks(
    prepared: Sequence[tuple[tuple[str, str], PreparedText, PreparedText]],
) -> list[list[tuple[tuple[str, str], PreparedText, PreparedText]]]:
    """Split pairs into batches of at most :data:`LSUM_BATCH` pairs and :data:`MAX_LSUM_CELLS` table cells."""
    chunks: list[list[tuple[tuple[str, str], PreparedText, PreparedText]]] = []
    current: list[tuple[tuple[str, str], PreparedText, PreparedText]] = []
    cells = 0
    for item in prepared:
        size = _cells(item[1], item[2])
        if current and (len(current) >= LSUM_BATCH or cells + size > MAX_LSUM_CELLS):
            chunks.append(current)
            current, cells = [], 0
        current.append(item)
        cells += size
    if current:
        chunks.append(current)
    return chunks


def _zero() -> dict[str, float]:
    """Every ROUGE figure at 0.0 (nothing was summarized, or nothing to compare with)."""
    return dict.fromkeys(ROUGE_METRICS, 0.0)


def rouge_scores_many(pairs: Sequence[tuple[str, str]]) -> list[dict[str, float]]:
    """ROUGE-1/2/L/Lsum F-measures of many ``(output, reference)`` pairs (faster together than one by one).

    Args:
        pairs: ``(output, reference)`` texts.

    Returns:
        For each pair, metric name -> F-measure in [0, 1]; all 0.0 when either text is empty.
    """
    results: list[dict[str, float] | None] = [None] * len(pairs)
    # Each distinct pair is scored once (the runs of a job often repeat an output), unless the cache has it.
    pending: dict[tuple[str, str], list[int]] = {}
    for index, (output, reference) in enumerate(pairs):
        if not output.strip() or not reference.strip():
            results[index] = _zero()
            continue
        key = (output, reference)
        if key in pending:
            pending[key].append(index)
            continue
        cached = _pair_cache_get(key)
        if cached is not None:
            results[index] = dict(cached)
            continue
        pending[key] = [index]
    prepared = [
        (key, _prepared_output(split_sentences(key[0])), _prepared_reference(split_sentences(key[1])))
        for key in pending
    ]
    for chunk in _lsum_chunks(prepared):
        if len(chunk) == 1 and _cells(chunk[0][1], chunk[0][2]) > MAX_LSUM_CELLS:
            # Too large for the tables at once (a runaway output): rouge-score's own summary LCS, a sentence pair
            # at a time, in little memory (and slowly).
            _, output, reference = chunk[0]
            summary = [rouge_scorer._summary_level_lcs(list(reference.sentences), list(output.sentences))]
        else:
            summary = _summary_hits([(output, reference) for _, output, reference in chunk])
        for (key, output, reference), lsum in zip(chunk, summary, strict=True):
            scores = {
                "rouge1": ngram_fmeasure(reference.unigrams, output.unigrams),
                "rouge2": ngram_fmeasure(reference.bigrams, output.bigrams),
                "rougeL": _fmeasure(
                    lcs_length(output.tokens, reference.masks, len(reference.tokens)),
                    len(output.tokens),
                    len(reference.tokens),
                ),
                "rougeLsum": (
                    float(lsum.fmeasure) if isinstance(lsum, scoring.Score)
                    else _fmeasure(lsum, len(output.tokens), len(reference.tokens))
                ),
            }
            _pair_cache_put(key, scores)
            for index in pending[key]:
                results[index] = dict(scores)
    return [r if r is not None else _zero() for r in results]


def rouge_scores(output: str, reference: str) -> dict[str, float]:
    """ROUGE-1/2/L/Lsum F-measures of ``output`` against ``reference``.

    Args:
        output: Generated text.
        reference: Reference text.

    Returns:
        Metric name -> F-measure in [0, 1]; all 0.0 when either text is empty (nothing was summarized).
    """
    return rouge_scores_many([(output, reference)])[0]


_pair_scores: dict[tuple[str, str], dict[str, float]] = {}
_pair_lock = threading.Lock()  # the scheduler scores in a thread of its own; dict moves are not atomic together


def _pair_cache_get(key: tuple[str, str]) -> dict[str, float] | None:
    """Cached scores of a pair (moved to the young end: the cache is least-recently-used)."""
    with _pair_lock:
        scores = _pair_scores.pop(key, None)
        if scores is not None:
            _pair_scores[key] = scores
        return scores


def _pair_cache_put(key: tuple[str, str], scores: dict[str, float]) -> None:
    """Keep a pair's scores, dropping the least recently used pairs past :data:`PAIR_CACHE_SIZE`."""
    with _pair_lock:
        _pair_scores[key] = scores
        while len(_pair_scores) > PAIR_CACHE_SIZE:
            del _pair_scores[next(iter(_pair_scores))]


def clear_caches() -> None:
    """Forget every cached stem, prepared text and score (for measurements of the cold path)."""
    _STEMMER.stem.cache_clear()
    _prepared_reference.cache_clear()
    _prepared_output.cache_clear()
    with _pair_lock:
        _pair_scores.clear()
