"""The prompts of a load sweep: the job's task samples, a JSON Lines file on the agent, or synthetic prompts.

* ``task``: the job's task samples (``Task.load_samples``), each as chat messages and as plain text, so either
  endpoint can send it; ``output_tokens`` is the spec's, else the task's ``max_new_tokens``.
* ``jsonl``: a file the job names, so a hostile one: the path goes through the agent's path policy (its data
  directory or a directory the operator allowed, no symbolic link out, never its private entries), the file
  must be a regular file of at most :data:`MAX_JSONL_BYTES` and :data:`MAX_JSONL_LINES` lines, and each line a
  JSON object with a non-empty ``prompt`` string and optionally ``output_tokens``. Every error names the field
  and the line: ``load.prompts.path: line 12: ...``; nothing of a line's content is repeated.
* ``synthetic``: ``input_tokens`` tokens exactly where the model's tokenizer is at hand (random token ids
  without special tokens, decoded, re-encoded and trimmed or topped up until the count holds, as the random
  dataset of ``vllm bench serve`` does), else common English words (about one token each with most
  tokenizers), which the notes say. Deterministic from the seed: the same prompts on every agent.

At most :data:`MAX_DISTINCT_PROMPTS` distinct prompts are built, in an order shuffled with the sweep's seed; a
load point cycles through them (the HTTP generator in its own seeded order).
"""

from __future__ import annotations

import errno
import json
import os
import random
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent_runtime.load.generator import LoadPrompt
from agent_runtime.paths import PathPolicy, PathRefused
from agent_runtime.tasks.base import Task, TaskDataError
from common.protocol import PromptSource, PromptSpec
from common.protocol.load import MAX_SYNTHETIC_TOKENS

#: Request field of the JSONL path (error messages start with it).
PATH_FIELD = "load.prompts.path"
#: Largest JSONL prompt file read.
MAX_JSONL_BYTES = 64 * 1024 * 1024
#: Most lines (blank ones included) of a JSONL prompt file.
MAX_JSONL_LINES = 100_000
#: Most distinct prompts built for a sweep (longer sweeps cycle through them).
MAX_DISTINCT_PROMPTS = 2048
#: Most tokens of all distinct synthetic prompts together (long prompts: fewer distinct ones).
SYNTHETIC_TOKEN_BUDGET = 4_000_000
#: Vocabulary ids examined for synthetic prompts (a sample of a large vocabulary is enough for random prompts).
_VOCABULARY_SAMPLE = 4096
#: Tries to bring a decoded synthetic prompt to its exact token count.
_SYNTHETIC_TRIES = 10
#: Common English words: each is one token with a leading space in most BPE vocabularies.
_WORDS = (
    "the", "of", "and", "to", "in", "is", "was", "for", "on", "as", "with", "by", "he", "at", "from", "his",
    "an", "were", "are", "which", "this", "be", "or", "has", "had", "not", "but", "first", "one", "their",
    "its", "new", "after", "who", "they", "have", "her", "she", "two", "been", "other", "when", "there", "all",
    "during", "into", "school", "time", "may", "years", "more", "most", "only", "over", "city", "some", "world",
    "would", "where", "later", "up", "such", "used", "many", "can", "state", "about", "national", "out",
    "known", "university", "united", "then", "made", "these", "season", "team", "three", "part", "well", "game",
    "under", "year", "between", "both", "film", "since", "while", "several", "end", "being", "people",
    "through", "house", "around", "high", "including", "long", "area", "each", "against", "music", "county",
    "number", "war", "work", "second", "american", "early", "day", "family", "life", "group", "name", "own",
    "place", "public", "river", "same", "small", "south", "north", "west", "east", "water", "light", "road",
    "town", "village", "park", "field", "line", "point", "power", "book", "form", "order",
)


class PromptError(TaskDataError):
    """The sweep's prompts cannot be built (a refused or unreadable file, a bad line); the message names the field."""

    def __init__(self, problem: str, *, field: str = PATH_FIELD) -> None:
        super().__init__(f"{field}: {problem}", field=field)
        self.problem = problem


class PromptTokenizer(Protocol):
    """What synthetic prompts need of a tokenizer (the model's own, local or the server's)."""

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``, without special tokens."""

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``."""

    def candidate_ids(self) -> list[int] | None:
        """Ids a random prompt may use (the vocabulary without special tokens); None when unknown."""


class HFTokenizer:
    """A Hugging Face tokenizer as a :class:`PromptTokenizer`.

    Args:
        tokenizer: A ``transformers`` tokenizer.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``, without special tokens."""
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids`` (special tokens are never drawn, so none are skipped)."""
        return str(self.tokenizer.decode(list(ids)))

    def candidate_ids(self) -> list[int]:
        """Every id of the vocabulary but the special ones (``vllm bench serve`` draws from the same set)."""
        special = set(getattr(self.tokenizer, "all_special_ids", []) or [])
        size = len(self.tokenizer)
        return [i for i in range(size) if i not in special]


@dataclass
class PromptSet:
    """The prompts of a sweep and what a reader should know about them.

    Attributes:
        prompts: The distinct prompts, in an order shuffled with the sweep's seed (a point cycles through them).
        notes: Caveats, for every point's ``notes``.
    """

    prompts: list[LoadPrompt]
    notes: list[str] = field(default_factory=list)


def _shuffled(prompts: list[LoadPrompt], seed: int) -> list[LoadPrompt]:
    """The prompts in an order shuffled with the seed (the same on every agent)."""
    order = list(prompts)
    random.Random(seed).shuffle(order)  # nosec B311  # a reproducible order, not a secret
    return order


def _task_prompts(task: Task, output_tokens: int) -> list[LoadPrompt]:
    """One prompt per task sample, as messages and as plain text."""
    samples = task.load_samples()
    if not samples:
        raise PromptError("the task produced no samples", field="load.prompts.source")
    return [
        LoadPrompt(text=task.prompt_text(s), messages=task.messages(s), prompt_tokens=None, output_tokens=output_tokens)
        for s in samples
    ]


def _open_regular(path: os.PathLike[str] | str) -> int:
    """Open a file for reading without following a final symbolic link or blocking on a FIFO.

    Raises:
        PromptError: Missing, not a regular file or not readable.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise PromptError("the file does not exist on this agent") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # the path was swapped for a link since it was checked
            raise PromptError("not a regular file") from None
        raise PromptError("the file cannot be read") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise PromptError("not a regular file")
    return fd


def read_jsonl_prompts(raw_path: str, policy: PathPolicy, default_output_tokens: int) -> list[LoadPrompt]:
    """Read a JSON Lines prompt file the job names (hostile input: see the module docstring).

    Args:
        raw_path: The path as the job gave it.
        policy: Where the agent's operator allows files.
        default_output_tokens: ``output_tokens`` of a line without one.

    Returns:
        One prompt per non-blank line.

    Raises:
        PromptError: Refused path, unreadable or oversized file, or a bad line (its number named).
    """
    try:
        path = policy.resolve(raw_path, field=PATH_FIELD)
    except PathRefused as exc:
        raise PromptError(exc.problem) from None
    fd = _open_regular(path)
    with os.fdopen(fd, "rb") as fh:
        if os.fstat(fh.fileno()).st_size > MAX_JSONL_BYTES:
            raise PromptError(f"the file is larger than {MAX_JSONL_BYTES} bytes")
        data = fh.read(MAX_JSONL_BYTES + 1)  # the file may grow after the size check
    if len(data) > MAX_JSONL_BYTES:
        raise PromptError(f"the file is larger than {MAX_JSONL_BYTES} bytes")
    lines = data.split(b"\n")
    if len(lines) > MAX_JSONL_LINES + (1 if not lines[-1].strip() else 0):
        raise PromptError(f"the file has more than {MAX_JSONL_LINES} lines")
    prompts: list[LoadPrompt] = []
    for lineno, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        prompts.append(_jsonl_line(raw, lineno, default_output_tokens))
    if not prompts:
        raise PromptError("the file holds no prompt")
    return prompts


def _jsonl_line(raw: bytes, lineno: int, default_output_tokens: int) -> LoadPrompt:
    """One line of a JSONL prompt file as a prompt.

    Raises:
        PromptError: Not UTF-8, not a JSON object, no non-empty ``prompt`` string, or a bad ``output_tokens``.
    """
    where = f"line {lineno}"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PromptError(f"{where}: not UTF-8 text") from None
    try:
        row = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
        raise PromptError(f"{where}: not valid JSON") from None
    if not isinstance(row, dict):
        raise PromptError(f"{where}: must be a JSON object with a \"prompt\" string")
    prompt = row.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise PromptError(f"{where}: prompt: must be a non-empty string")
    out = row.get("output_tokens", default_output_tokens)
    if isinstance(out, float) and out.is_integer():
        out = int(out)
    if isinstance(out, bool) or not isinstance(out, int) or not 1 <= out <= MAX_SYNTHETIC_TOKENS:
        raise PromptError(f"{where}: output_tokens: must be a whole number from 1 to {MAX_SYNTHETIC_TOKENS}")
    return LoadPrompt(text=prompt, messages=None, prompt_tokens=None, output_tokens=out)


def _exact_prompt(tokenizer: PromptTokenizer, ids: list[int], target: int, extra: list[int], rng: random.Random
                  ) -> tuple[str, int]:
    """Decode ``ids`` and bring the text to ``target`` tokens when encoded again (decoding may merge or split).

    Args:
        tokenizer: The model's tokenizer.
        ids: The drawn ids (``target`` of them).
        target: Wanted token count.
        extra: Ids to top a short prompt up with.
        rng: The sweep's random source.

    Returns:
        ``(text, token count)``: the count is ``target`` unless the tries ran out.
    """
    text = tokenizer.decode(ids)
    count = target
    for _ in range(_SYNTHETIC_TRIES):
        encoded = tokenizer.encode(text)
        count = len(encoded)
        if count == target:
            break
        if count > target:
            encoded = encoded[:target]
        else:
            encoded += [rng.choice(extra) for _ in range(target - count)]
        text = tokenizer.decode(encoded)
    else:
        count = len(tokenizer.encode(text))
    return text, count


def _clean_ids(tokenizer: PromptTokenizer, vocabulary: list[int], rng: random.Random) -> list[int]:
    """Ids of the vocabulary (a sample of at most :data:`_VOCABULARY_SAMPLE`) that survive decoding.

    Such an id decodes to printable text that encodes back to itself, so a prompt of them keeps its length once
    decoded (a byte-level vocabulary's stray bytes decode to replacement characters that encode as several tokens).
    """
    sample = vocabulary if len(vocabulary) <= _VOCABULARY_SAMPLE else rng.sample(vocabulary, _VOCABULARY_SAMPLE)
    clean = []
    for i in sorted(sample):
        text = tokenizer.decode([i])
        if text.strip() and "\ufffd" not in text and text.isprintable() and tokenizer.encode(text) == [i]:
            clean.append(i)
    return clean


def synthetic_prompts(
    input_tokens: int, output_tokens: int, n: int, seed: int, tokenizer: PromptTokenizer | None
) -> PromptSet:
    """``n`` synthetic prompts of ``input_tokens`` tokens (see the module docstring).

    Args:
        input_tokens: Prompt length in tokens.
        output_tokens: Tokens to generate per request.
        n: Distinct prompts to build.
        seed: The sweep's seed.
        tokenizer: The model's tokenizer, None when the agent has none.

    Returns:
        The prompts, with a note when their lengths are approximate.
    """
    rng = random.Random(seed)  # nosec B311  # reproducible prompts, not secrets
    if tokenizer is None:
        prompts = [
            LoadPrompt(" ".join(rng.choice(_WORDS) for _ in range(input_tokens)), None, None, output_tokens)
            for _ in range(n)
        ]
        note = (
            f"synthetic prompts are {input_tokens} common English words each, not measured in tokens: the agent "
            "has no tokenizer for this model (most tokenizers make about one token of each word)"
        )
        return PromptSet(prompts, [note])
    vocabulary = tokenizer.candidate_ids()
    if vocabulary:
        candidates = _clean_ids(tokenizer, vocabulary, rng) or vocabulary
    else:
        # The server's tokenizer: its vocabulary is unknown, so ids come from encoding common words.
        candidates = sorted(set(tokenizer.encode(" " + " ".join(_WORDS))))
    prompts = []
    off = 0
    for _ in range(n):
        ids = [rng.choice(candidates) for _ in range(input_tokens)]
        text, count = _exact_prompt(tokenizer, ids, input_tokens, candidates, rng)
        off = max(off, abs(count - input_tokens))
        prompts.append(LoadPrompt(text, None, count, output_tokens))
    notes = ["synthetic prompts: random token ids of the model's vocabulary (special tokens and ids that do not "
             "decode to printable text left out), decoded"]
    if off:
        notes.append(f"some synthetic prompts are off input_tokens by up to {off} token(s) once decoded and re-encoded")
    return PromptSet(prompts, notes)


def build_prompts(
    spec: PromptSpec,
    task: Task,
    tokenizer: PromptTokenizer | None,
    policy: PathPolicy,
    n: int,
    *,
    seed: int = 0,
) -> PromptSet:
    """Build the prompts of a sweep.

    Args:
        spec: The sweep's prompt spec.
        task: The job's task (its samples for ``task``; its ``max_new_tokens`` when the spec gives no
            ``output_tokens``).
        tokenizer: The model's tokenizer (synthetic prompts), None when the agent has none.
        policy: Where files a job names may lie.
        n: Requests of a point, warm-up included: at most this many (and :data:`MAX_DISTINCT_PROMPTS`) prompts
            are built.
        seed: The sweep's seed (prompt order, synthetic prompts).

    Returns:
        The distinct prompts (a point cycles through them) and their notes.

    Raises:
        PromptError: The prompts cannot be built (the message names the field and, for a file, the line).
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    output_tokens = spec.output_tokens or task.generation().max_new_tokens
    distinct = min(n, MAX_DISTINCT_PROMPTS)
    notes: list[str] = []
    if spec.source is PromptSource.SYNTHETIC:
        assert spec.input_tokens is not None  # nosec B101  # narrowing: PromptSpec requires it for synthetic
        distinct = max(1, min(distinct, SYNTHETIC_TOKEN_BUDGET // spec.input_tokens))
        built = synthetic_prompts(spec.input_tokens, output_tokens, distinct, seed, tokenizer)
        base, notes = built.prompts, built.notes
    elif spec.source is PromptSource.JSONL:
        base = read_jsonl_prompts(spec.path or "", policy, output_tokens)[:distinct]
    else:
        base = _task_prompts(task, output_tokens)[:distinct]
    if n > len(base):
        notes.append(f"{len(base)} distinct prompt(s), repeated in turn (a server's prefix cache may serve a "
                     "repeated prompt faster)")
    return PromptSet(_shuffled(base, seed), notes)
