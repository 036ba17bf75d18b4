import json
from pathlib import Path

import httpx
import pytest

from agent_runtime.tasks import TaskDataError, make_task
from agent_runtime.tasks.base import Sample
from agent_runtime.tasks.wikipedia import bucketed_sample, split_first_sentence, truncate_document


@pytest.mark.parametrize(
    ("text", "first"),
    [
        ("Paris is a city. It is big.", "Paris is a city."),
        ("J. R. R. Tolkien was a writer. He wrote books.", "J. R. R. Tolkien was a writer."),
        ("The U.S. Army is large. It fights.", "The U.S. Army is large."),
        ("Built c. 1500 by monks. Later rebuilt.", "Built c. 1500 by monks."),
        ("One sentence only.", "One sentence only."),
    ],
)
def test_split_first_sentence(text, first):
    got, rest = split_first_sentence(text)
    assert got == first
    assert (rest == "") == (text == first)


def test_truncate_document_prefers_sentence_boundary():
    text = "A short one. " * 40
    cut = truncate_document(text, 100)
    assert len(cut) <= 100 and cut.endswith(".")
    assert truncate_document("short", 100) == "short"


def _samples(n):
    return [Sample(f"s{i}", f"t{i}", "x" * (10 + i * 7), "ref") for i in range(n)]


def test_bucketed_sample_is_seeded_and_spread():
    pool = _samples(30)
    a = bucketed_sample(pool, 6, seed=1)
    b = bucketed_sample(list(reversed(pool)), 6, seed=1)
    assert [s.id for s in a] == [s.id for s in b]  # independent of input order
    assert [s.id for s in bucketed_sample(pool, 6, seed=2)] != [s.id for s in a]
    assert sorted(s.meta["length_bucket"] for s in a) == [0, 0, 1, 1, 2, 2]
    assert len(bucketed_sample(pool, 100, seed=1)) == 30


def test_packaged_source_is_deterministic(tmp_path):
    params = {"num_samples": 4, "seed": 7}
    first = make_task("wikipedia_summarization", params, data_dir=tmp_path).load_samples()
    again = make_task("wikipedia_summarization", params, data_dir=tmp_path).load_samples()
    assert [s.id for s in first] == [s.id for s in again]
    for s in first:
        # The reference (first sentence) is not part of the document: ROUGE is not circular.
        assert s.reference and s.reference not in s.document
        assert len(s.document) >= 200


def test_packaged_titles_and_unknown_title(tmp_path):
    task = make_task("wikipedia_summarization", {"titles": ["Carmen"], "num_samples": 1}, data_dir=tmp_path)
    [s] = task.load_samples()
    assert s.title == "Carmen" and s.reference.startswith("Carmen is an opera")
    bad = make_task("wikipedia_summarization", {"titles": ["No Such Article 123"]}, data_dir=tmp_path)
    with pytest.raises(TaskDataError) as exc:
        bad.load_samples()
    assert exc.value.field == "task.params.titles"


def test_messages_contain_document(tmp_path):
    task = make_task("wikipedia_summarization", {"num_samples": 1}, data_dir=tmp_path)
    [s] = task.load_samples()
    msgs = task.messages(s)
    assert msgs[0]["role"] == "system" and s.document in msgs[-1]["content"]
    assert s.document in task.prompt_text(s)


def test_jsonl_source(tmp_path):
    path = tmp_path / "data.jsonl"
    rows = [{"id": f"r{i}", "title": f"T{i}", "document": "word " * (50 + i), "reference": "ref"} for i in range(5)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    task = make_task(
        "wikipedia_summarization",
        {"source": "jsonl", "jsonl_path": str(path), "num_samples": 3, "min_document_chars": 10},
        data_dir=tmp_path,
    )
    samples = task.load_samples()
    assert len(samples) == 3 and {s.id for s in samples} <= {r["id"] for r in rows}


def test_jsonl_bad_line_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"id": "a", "document": "d" * 300, "reference": "r"}) + "\n" + '{"id": "b"}\n')
    task = make_task("wikipedia_summarization", {"source": "jsonl", "jsonl_path": str(path)}, data_dir=tmp_path)
    with pytest.raises(TaskDataError, match="line 2: document"):
        task.load_samples()
    missing = make_task(
        "wikipedia_summarization", {"source": "jsonl", "jsonl_path": str(tmp_path / "nope.jsonl")}, data_dir=tmp_path
    )
    with pytest.raises(TaskDataError) as exc:
        missing.load_samples()
    assert exc.value.field == "task.params.jsonl_path"


ARTICLE = (
    "Alan Turing was an English mathematician.\nHe founded computer science.\n\n"
    "== Early life ==\nTuring was born in London in 1912.\n\n== Career ==\n"
    "He worked at Bletchley Park on codebreaking during the war. " * 5
)


def _wiki_handler(calls):
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        if "/page/summary/" in request.url.path:
            if request.url.path.endswith("Missing_Page"):
                return httpx.Response(404, json={"title": "Not found."})
            return httpx.Response(
                200,
                json={
                    "title": "Alan Turing",
                    "extract": "Alan Turing was an English mathematician. He founded computer science.",
                    "description": "English mathematician",
                },
            )
        assert request.url.path == "/w/api.php"
        assert request.url.params["explaintext"] == "1"
        return httpx.Response(200, json={"query": {"pages": [{"title": "Alan Turing", "extract": ARTICLE}]}})

    return handler


def test_wikipedia_api_source_with_cache(tmp_path: Path):
    calls: list[str] = []
    client = httpx.Client(transport=httpx.MockTransport(_wiki_handler(calls)))
    params = {"source": "wikipedia_api", "titles": ["Alan Turing"], "num_samples": 1}
    [s] = make_task("wikipedia_summarization", params, data_dir=tmp_path, http_client=client).load_samples()
    assert s.reference.startswith("Alan Turing was an English mathematician")
    assert s.document.startswith("Turing was born in London")  # the lead is not in the document
    assert "==" not in s.document
    assert any("en.wikipedia.org/api/rest_v1/page/summary/Alan_Turing" in c for c in calls)

    # Second load comes from the on-disk cache: a transport that fails proves no request is made.
    def broken(request):
        raise AssertionError("cache miss")

    offline = httpx.Client(transport=httpx.MockTransport(broken))
    [again] = make_task("wikipedia_summarization", params, data_dir=tmp_path, http_client=offline).load_samples()
    assert again == s


def test_wikipedia_api_missing_article(tmp_path):
    client = httpx.Client(transport=httpx.MockTransport(_wiki_handler([])))
    params = {"source": "wikipedia_api", "titles": ["Missing Page"]}
    task = make_task("wikipedia_summarization", params, data_dir=tmp_path, http_client=client)
    with pytest.raises(TaskDataError, match="no article"):
        task.load_samples()
