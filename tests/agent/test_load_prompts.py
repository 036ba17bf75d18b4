"""The prompts of a load sweep: task samples, a hostile JSONL file, synthetic prompts of an exact token length."""

import json
import os

import pytest

from agent_runtime.load import prompts as prompts_mod
from agent_runtime.load.prompts import HFTokenizer, PromptError, build_prompts, read_jsonl_prompts, synthetic_prompts
from agent_runtime.paths import PathPolicy
from agent_runtime.tasks import make_task
from common.protocol import PromptSpec

TASK_JSONL = [{"id": f"s{i}", "document": f"Document {i}. " * 30, "reference": f"Reference {i}."} for i in range(3)]


def _task(tmp_path, **params):
    path = tmp_path / "samples.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in TASK_JSONL), encoding="utf-8")
    base = {"source": "jsonl", "jsonl_path": str(path), "num_samples": 3, "max_new_tokens": 9, **params}
    return make_task("wikipedia_summarization", base, data_dir=tmp_path)


def _policy(tmp_path, *allowed):
    return PathPolicy.for_agent(tmp_path, (), allowed)


def _write(path, lines):
    path.write_bytes(b"\n".join(x if isinstance(x, bytes) else x.encode() for x in lines))
    return path


def test_task_prompts_carry_messages_and_text_in_a_seeded_order(tmp_path):
    task = _task(tmp_path)
    spec = PromptSpec()
    one = build_prompts(spec, task, None, _policy(tmp_path), 10, seed=3)
    again = build_prompts(spec, task, None, _policy(tmp_path), 10, seed=3)
    assert [p.text for p in one.prompts] == [p.text for p in again.prompts]
    assert len(one.prompts) == 3  # distinct prompts: a point cycles through them
    assert all(p.output_tokens == 9 and p.messages and p.messages[-1]["role"] == "user" for p in one.prompts)
    assert all(p.messages[-1]["content"] in p.text for p in one.prompts)  # the same prompt, flattened
    assert any("repeated in turn" in n for n in one.notes)
    # The spec's output_tokens wins over the task's max_new_tokens; enough requests: no repetition note.
    two = build_prompts(PromptSpec(output_tokens=5), task, None, _policy(tmp_path), 3)
    assert {p.output_tokens for p in two.prompts} == {5} and not two.notes


def test_jsonl_prompts_read_with_defaults_and_own_lengths(tmp_path):
    path = _write(tmp_path / "p.jsonl", [json.dumps({"prompt": "Hello"}), "", json.dumps(
        {"prompt": "Tell me more", "output_tokens": 12, "other": "ignored"})])
    got = read_jsonl_prompts("p.jsonl", _policy(tmp_path), 7)
    assert [(p.text, p.messages, p.output_tokens) for p in got] == [("Hello", None, 7), ("Tell me more", None, 12)]
    task = _task(tmp_path)
    built = build_prompts(PromptSpec(source="jsonl", path=str(path)), task, None, _policy(tmp_path), 2)
    assert sorted(p.text for p in built.prompts) == ["Hello", "Tell me more"]


def test_jsonl_in_an_allowed_directory(tmp_path):
    other = tmp_path.parent / f"{tmp_path.name}-allowed"
    other.mkdir()
    _write(other / "p.jsonl", [json.dumps({"prompt": "x"})])
    with pytest.raises(PromptError, match=r"^load\.prompts\.path: not a location this agent allows"):
        read_jsonl_prompts(str(other / "p.jsonl"), _policy(tmp_path), 4)
    assert read_jsonl_prompts(str(other / "p.jsonl"), _policy(tmp_path, other), 4)[0].text == "x"


@pytest.mark.parametrize("name", ["../outside.jsonl", "/etc/passwd", "spool/job/spec.json", "local-token", ""])
def test_jsonl_path_outside_or_private_is_refused(tmp_path, name):
    (tmp_path.parent / "outside.jsonl").write_text(json.dumps({"prompt": "x"}))
    (tmp_path / "local-token").write_text("secret")
    with pytest.raises(PromptError) as info:
        read_jsonl_prompts(name, _policy(tmp_path), 4)
    assert str(info.value).startswith("load.prompts.path: not a location this agent allows")
    assert info.value.field == "load.prompts.path"


def test_jsonl_symlink_out_is_refused(tmp_path):
    outside = tmp_path.parent / f"{tmp_path.name}-secret.jsonl"
    outside.write_text(json.dumps({"prompt": "secret"}))
    (tmp_path / "link.jsonl").symlink_to(outside)
    (tmp_path / "dirlink").symlink_to(tmp_path.parent)
    for name in ("link.jsonl", f"dirlink/{outside.name}"):
        with pytest.raises(PromptError, match="not a location this agent allows"):
            read_jsonl_prompts(name, _policy(tmp_path), 4)


def test_jsonl_not_a_regular_file(tmp_path):
    (tmp_path / "adir").mkdir()
    os.mkfifo(tmp_path / "fifo")  # opening must not block waiting for a writer
    for name in ("adir", "fifo"):
        with pytest.raises(PromptError, match=r"^load\.prompts\.path: not a regular file$"):
            read_jsonl_prompts(name, _policy(tmp_path), 4)
    with pytest.raises(PromptError, match="does not exist"):
        read_jsonl_prompts("missing.jsonl", _policy(tmp_path), 4)


def test_jsonl_size_and_line_caps(tmp_path, monkeypatch):
    _write(tmp_path / "big.jsonl", [json.dumps({"prompt": "x" * 50})] * 4)
    monkeypatch.setattr(prompts_mod, "MAX_JSONL_BYTES", 100)
    with pytest.raises(PromptError, match=r"^load\.prompts\.path: the file is larger than 100 bytes$"):
        read_jsonl_prompts("big.jsonl", _policy(tmp_path), 4)
    monkeypatch.setattr(prompts_mod, "MAX_JSONL_BYTES", 10_000)
    monkeypatch.setattr(prompts_mod, "MAX_JSONL_LINES", 3)
    with pytest.raises(PromptError, match=r"more than 3 lines"):
        read_jsonl_prompts("big.jsonl", _policy(tmp_path), 4)
    _write(tmp_path / "three.jsonl", [json.dumps({"prompt": "x"})] * 3 + [""])  # a final newline is no line
    assert len(read_jsonl_prompts("three.jsonl", _policy(tmp_path), 4)) == 3


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b"{not json", "not valid JSON"),
        (b'["prompt"]', 'must be a JSON object with a "prompt" string'),
        (b'{"text": "no prompt"}', "prompt: must be a non-empty string"),
        (b'{"prompt": "   "}', "prompt: must be a non-empty string"),
        (b'{"prompt": 12}', "prompt: must be a non-empty string"),
        (b'{"prompt": "x", "output_tokens": true}', "output_tokens: must be a whole number"),
        (b'{"prompt": "x", "output_tokens": 0}', "output_tokens: must be a whole number"),
        (b'{"prompt": "x", "output_tokens": 2.5}', "output_tokens: must be a whole number"),
        (b'{"prompt": "\xff\xfe"}', "not UTF-8 text"),
        (b"[" * 100_000, "not valid JSON"),
    ],
)
def test_jsonl_bad_line_names_its_number_not_its_content(tmp_path, line, problem):
    _write(tmp_path / "bad.jsonl", [json.dumps({"prompt": "fine"}), line])
    with pytest.raises(PromptError) as info:
        read_jsonl_prompts("bad.jsonl", _policy(tmp_path), 4)
    assert str(info.value).startswith(f"load.prompts.path: line 2: {problem}")
    assert "no prompt" not in str(info.value)


def test_jsonl_without_prompts(tmp_path):
    _write(tmp_path / "empty.jsonl", ["", "  "])
    with pytest.raises(PromptError, match="holds no prompt"):
        read_jsonl_prompts("empty.jsonl", _policy(tmp_path), 4)


def test_synthetic_prompts_have_exactly_input_tokens_with_the_models_tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    wrapped = HFTokenizer(tok)
    built = synthetic_prompts(32, 8, 6, seed=11, tokenizer=wrapped)
    assert len(built.prompts) == 6
    for p in built.prompts:
        ids = tok.encode(p.text, add_special_tokens=False)
        assert len(ids) == 32 == p.prompt_tokens
        assert not set(ids) & set(tok.all_special_ids)
        assert p.output_tokens == 8 and p.messages is None
    assert [p.text for p in synthetic_prompts(32, 8, 6, seed=11, tokenizer=wrapped).prompts] == [
        p.text for p in built.prompts
    ]
    assert [p.text for p in synthetic_prompts(32, 8, 6, seed=12, tokenizer=wrapped).prompts] != [
        p.text for p in built.prompts
    ]


def test_synthetic_prompts_without_a_tokenizer_say_they_are_approximate(tmp_path):
    task = _task(tmp_path)
    spec = PromptSpec(source="synthetic", input_tokens=20, output_tokens=4)
    built = build_prompts(spec, task, None, _policy(tmp_path), 5, seed=1)
    assert len(built.prompts) == 5
    assert all(len(p.text.split()) == 20 and p.prompt_tokens is None and p.output_tokens == 4 for p in built.prompts)
    assert any("not measured in tokens" in n for n in built.notes)
    assert [p.text for p in build_prompts(spec, task, None, _policy(tmp_path), 5, seed=1).prompts] == [
        p.text for p in built.prompts
    ]


def test_long_synthetic_prompts_are_fewer(tmp_path, monkeypatch):
    monkeypatch.setattr(prompts_mod, "SYNTHETIC_TOKEN_BUDGET", 100)
    spec = PromptSpec(source="synthetic", input_tokens=30, output_tokens=2)
    built = build_prompts(spec, _task(tmp_path), None, _policy(tmp_path), 50)
    assert len(built.prompts) == 3 and any("3 distinct prompt(s), repeated in turn" in n for n in built.notes)
