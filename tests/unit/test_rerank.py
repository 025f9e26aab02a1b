"""LocalReranker against a reference written straight from the Qwen3-Reranker model card, plus the
Reranker interface (rerank order, top_k, async twins, bad input).

The reference below is the model card's "Using Transformers" snippet with only the model path
changed; it shares no code with qwen_embed_adapters.rerank.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from qwen_embed_adapters import rerank as rerank_module  # noqa: E402
from qwen_embed_adapters.errors import ConfigurationError, InvalidInputError, MissingDependencyError  # noqa: E402
from qwen_embed_adapters.rerank import LocalReranker, Reranker, format_pair  # noqa: E402
from qwen_embed_adapters.testing import make_tiny_qwen3_reranker  # noqa: E402

QUERIES = ["What is the capital of China?", "Explain gravity", "向量数据库是什么"]
DOCUMENTS = [
    "The capital of China is Beijing.",
    "Gravity is a force that attracts two bodies towards each other. It gives weight to physical objects "
    "and is responsible for the movement of planets around the sun.",
    "机器学习 深度学习 向量数据库",
    "",
    "the quick brown fox jumps over the lazy dog " * 12,
    "yes",
]
TASK = "Given a web search query, retrieve relevant passages that answer the query"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_tiny_qwen3_reranker(tmp_path_factory.mktemp("tiny_reranker") / "model", seed=0)


@pytest.fixture(scope="module")
def reranker(folder: str) -> LocalReranker:
    return LocalReranker(folder, device="cpu")


def readme_scores(model_path: str, pairs_in: list[tuple[str, str]], task: str | None, max_length: int = 8192) -> list[float]:
    """Qwen3-Reranker model card, "Using Transformers", verbatim apart from the model path."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    def format_instruction(instruction, query, doc):  # type: ignore[no-untyped-def]
        if instruction is None:
            instruction = "Given a web search query, retrieve relevant passages that answer the query"
        output = "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}".format(  # noqa: UP032 - verbatim
            instruction=instruction, query=query, doc=doc
        )
        return output

    def process_inputs(pairs):  # type: ignore[no-untyped-def]
        inputs = tokenizer(
            pairs, padding=False, truncation="longest_first",
            return_attention_mask=False, max_length=max_length - len(prefix_tokens) - len(suffix_tokens)
        )
        for i, ele in enumerate(inputs["input_ids"]):
            inputs["input_ids"][i] = prefix_tokens + ele + suffix_tokens
        inputs = tokenizer.pad(inputs, padding=True, return_tensors="pt", max_length=max_length)
        for key in inputs:
            inputs[key] = inputs[key].to(model.device)
        return inputs

    @torch.no_grad()
    def compute_logits(inputs, **kwargs):  # type: ignore[no-untyped-def]
        batch_scores = model(**inputs).logits[:, -1, :]
        true_vector = batch_scores[:, token_true_id]
        false_vector = batch_scores[:, token_false_id]
        batch_scores = torch.stack([false_vector, true_vector], dim=1)
        batch_scores = torch.nn.functional.log_softmax(batch_scores, dim=1)
        scores = batch_scores[:, 1].exp().tolist()
        return scores

    tokenizer = AutoTokenizer.from_pretrained(model_path, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(model_path).eval()
    token_false_id = tokenizer.convert_tokens_to_ids("no")
    token_true_id = tokenizer.convert_tokens_to_ids("yes")
    prefix = "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n"
    suffix = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    prefix_tokens = tokenizer.encode(prefix, add_special_tokens=False)
    suffix_tokens = tokenizer.encode(suffix, add_special_tokens=False)
    pairs = [format_instruction(task, query, doc) for query, doc in pairs_in]
    inputs = process_inputs(pairs)
    return compute_logits(inputs)  # type: ignore[no-any-return]


def test_tiny_reranker_loads_like_the_real_one(folder: str) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    assert tok.padding_side == "left" and tok.pad_token == "<|endoftext|>"
    assert tok("Beijing")["input_ids"][-1] != tok.convert_tokens_to_ids("<|endoftext|>")  # appends nothing
    assert isinstance(tok.convert_tokens_to_ids("yes"), int) and isinstance(tok.convert_tokens_to_ids("no"), int)
    assert tok.convert_tokens_to_ids("<|im_start|>") is not None
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert type(model).__name__ == "Qwen3ForCausalLM"
    again = Path(make_tiny_qwen3_reranker(Path(folder).parent / "again", seed=0))
    assert (again / "model.safetensors").read_bytes() == (Path(folder) / "model.safetensors").read_bytes()


def test_scores_equal_the_model_card_reference(reranker: LocalReranker, folder: str) -> None:
    for query in QUERIES:
        ours = reranker.score(query, DOCUMENTS)
        ref = readme_scores(folder, [(query, d) for d in DOCUMENTS], TASK)
        assert ours.dtype == np.float32 and ours.shape == (len(DOCUMENTS),)
        np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=0)
    # The tiny model is not degenerate: scores spread, so equality above means something.
    all_scores = np.concatenate([reranker.score(q, DOCUMENTS) for q in QUERIES])
    assert all_scores.max() - all_scores.min() > 0.3
    assert ((all_scores > 0) & (all_scores < 1)).all()


def test_instruction_is_part_of_the_prompt(reranker: LocalReranker, folder: str) -> None:
    task = "Given a question in Chinese, find the passage that answers it"
    ours = reranker.score(QUERIES[2], DOCUMENTS, instruction=task)
    np.testing.assert_allclose(ours, readme_scores(folder, [(QUERIES[2], d) for d in DOCUMENTS], task), atol=1e-5)
    assert not np.allclose(ours, reranker.score(QUERIES[2], DOCUMENTS), atol=1e-4)
    fixed = LocalReranker(folder, device="cpu", instruction=task)
    np.testing.assert_allclose(fixed.score(QUERIES[2], DOCUMENTS), ours, atol=1e-6)
    assert format_pair("q", "d", task) == f"<Instruct>: {task}\n<Query>: q\n<Document>: d"


def test_prompt_tokens_are_prefix_pair_suffix(reranker: LocalReranker) -> None:
    tok = reranker.tokenizer
    seqs = reranker.tokenize("capital?", ["Beijing"])
    text = tok.decode(seqs[0])
    assert text.startswith("<|im_start|>system\nJudge whether the Document meets the requirements")
    assert "<|im_end|>\n<|im_start|>user\n<Instruct>: " + TASK + "\n<Query>: capital?\n<Document>: Beijing" in text
    assert text.endswith("<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")


def test_truncation_matches_the_reference(folder: str) -> None:
    short = LocalReranker(folder, device="cpu", max_length=90)
    seqs = short.tokenize(QUERIES[0], DOCUMENTS)
    assert max(len(s) for s in seqs) == 90
    assert seqs[4][-len(short.suffix_tokens):] == short.suffix_tokens  # the suffix survives truncation
    ref = readme_scores(folder, [(QUERIES[0], d) for d in DOCUMENTS], TASK, max_length=90)
    np.testing.assert_allclose(short.score(QUERIES[0], DOCUMENTS), ref, atol=1e-5)


def test_token_budget_batches_give_the_same_scores(
    folder: str, reranker: LocalReranker, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = LocalReranker(folder, device="cpu", max_batch_tokens=150)
    lengths = [len(s) for s in small.tokenize(QUERIES[1], DOCUMENTS)]
    plan = small._plan(lengths)
    assert len(plan) > 2
    assert sorted(i for b in plan for i in b) == list(range(len(DOCUMENTS)))
    for b in plan:  # longest first inside each batch, and within budget unless alone
        assert len(b) == 1 or lengths[b[0]] * len(b) <= 150
    calls = []
    original = rerank_module.pad_batch

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(rerank_module, "pad_batch", spy)
    scores = small.score(QUERIES[1], DOCUMENTS)
    assert len(calls) == len(plan)
    np.testing.assert_allclose(scores, reranker.score(QUERIES[1], DOCUMENTS), atol=1e-5)


def test_rerank_orders_by_score_and_cuts_top_k(reranker: LocalReranker) -> None:
    scores = reranker.score(QUERIES[0], DOCUMENTS)
    ranked = reranker.rerank(QUERIES[0], DOCUMENTS)
    assert [i for i, _ in ranked] == sorted(range(len(DOCUMENTS)), key=lambda i: -scores[i])
    assert [s for _, s in ranked] == pytest.approx(sorted(scores.tolist(), reverse=True))
    assert reranker.rerank(QUERIES[0], DOCUMENTS, top_k=2) == ranked[:2]
    assert reranker.rerank(QUERIES[0], DOCUMENTS, top_k=100) == ranked
    assert all(isinstance(i, int) and isinstance(s, float) for i, s in ranked)


def test_ties_keep_input_order(reranker: LocalReranker) -> None:
    ranked = reranker.rerank(QUERIES[0], ["same text", "other", "same text"])
    positions = [i for i, _ in ranked]
    assert positions.index(0) < positions.index(2)


async def test_async_twins_equal_sync(reranker: LocalReranker) -> None:
    np.testing.assert_array_equal(await reranker.ascore(QUERIES[1], DOCUMENTS), reranker.score(QUERIES[1], DOCUMENTS))
    assert await reranker.arerank(QUERIES[1], DOCUMENTS, top_k=3) == reranker.rerank(QUERIES[1], DOCUMENTS, top_k=3)


def test_empty_document_list_gives_no_scores(reranker: LocalReranker) -> None:
    assert reranker.score("q", []).shape == (0,)
    assert reranker.rerank("q", []) == []


@pytest.mark.parametrize(
    ("query", "documents", "kwargs", "message", "index"),
    [
        ("", ["a"], {}, "query must be a non-empty str", None),
        (None, ["a"], {}, "query must be a non-empty str", None),
        ("q", "just one string", {}, "wrap a single text in a list", None),
        ("q", None, {}, "expected a sequence of str, got NoneType", None),
        ("q", ["a", "b", None], {}, r"documents\[2\] is None", 2),
        ("q", ["a", 7], {}, r"documents\[1\] is int", 1),
        ("q", ["a"], {"instruction": 3}, "instruction must be a str", None),
    ],
)
def test_bad_input_is_refused_naming_the_item(
    reranker: LocalReranker, query: object, documents: object, kwargs: dict, message: str, index: int | None
) -> None:
    """Bad input: empty/None query, a bare str or None as documents, None/int documents, a non-str instruction."""
    with pytest.raises(InvalidInputError, match=message) as err:
        reranker.score(query, documents, **kwargs)  # type: ignore[arg-type]
    assert err.value.index == index


def test_bad_top_k(reranker: LocalReranker) -> None:
    """Bad input: top_k of 0, negative, or a bool."""
    for k in (0, -1, True):
        with pytest.raises(InvalidInputError, match="top_k must be a positive int"):
            reranker.rerank("q", ["a"], top_k=k)


def test_bad_constructor_arguments(folder: str, tmp_path: Path) -> None:
    """Bad input: a folder with no model, a dtype name that does not exist, a zero token budget."""
    with pytest.raises(ConfigurationError, match="could not load the reranker"):
        LocalReranker(str(tmp_path / "nothing-here"), device="cpu")
    with pytest.raises(ConfigurationError, match="dtype 'float8' is not one of"):
        LocalReranker(folder, device="cpu", dtype="float8")
    with pytest.raises(ConfigurationError, match="max_batch_tokens must be at least 1, got 0"):
        LocalReranker(folder, device="cpu", max_batch_tokens=0)


def test_missing_torch_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingDependencyError) as err:
        LocalReranker("anything")
    assert 'pip install "qwen-embed-adapters[local]"' in str(err.value)


def test_backend_answers_are_checked() -> None:
    """Bad input (from a backend): the wrong number of scores, or a NaN score."""

    class Broken(Reranker):
        def __init__(self, answer: list[float]) -> None:
            super().__init__("broken")
            self.answer = answer

        def _score(self, query: str, documents: list[str], instruction: str) -> np.ndarray:
            return np.asarray(self.answer)

    from qwen_embed_adapters.errors import ServiceError

    with pytest.raises(ServiceError, match="asked for 3 scores, got 2"):
        Broken([0.1, 0.2]).score("q", ["a", "b", "c"])
    with pytest.raises(ServiceError, match="document 1: the score is NaN"):
        Broken([0.1, float("nan")]).score("q", ["a", "b"])


def test_explicit_devices_are_checked_like_local_embedder(folder: str) -> None:
    """Bad input: a device torch cannot use here (no CUDA on this machine) and one that is no device at all.

    LocalReranker shares LocalEmbedder's device/dtype resolution (issue 21): before, an explicit device
    was passed through unchecked and MPS got float16 here but float32 in LocalEmbedder.
    """
    if not torch.cuda.is_available():
        with pytest.raises(ConfigurationError, match="'cuda:0' asked for, but torch sees no CUDA device"):
            LocalReranker(folder, device="cuda:0")
    with pytest.raises(ConfigurationError, match="device 'gpu-please' is not a torch device"):
        LocalReranker(folder, device="gpu-please")
    from qwen_embed_adapters.local import resolve_dtype

    assert resolve_dtype(torch, "auto", "mps") is torch.float32  # the one rule both use
    r = LocalReranker(folder, device="cpu", dtype="bfloat16")
    assert r.dtype is torch.bfloat16 and r._model.dtype is torch.bfloat16 and r.device == "cpu"
