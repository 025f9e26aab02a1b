"""make_qwen3: the real Qwen3-Embedding shapes, and the tiny case unchanged (issue 18)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from transformers import Qwen3Model  # noqa: E402

from qwen_embed_adapters.testing import make_qwen3, make_tiny_qwen3, qwen3_config  # noqa: E402


def _parameters(size: str) -> int:
    with torch.device("meta"):
        model = Qwen3Model(qwen3_config(size))
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("size", "layers", "hidden", "heads", "kv", "inter", "params_m"),
    [
        ("0.6B", 28, 1024, 16, 8, 3072, 595.8),  # model card: 0.6B; 595,776,512 parameters
        ("4B", 36, 2560, 32, 8, 9728, 4021.8),
        ("8B", 36, 4096, 32, 8, 12288, 7567.3),
    ],
)
def test_real_shapes(size: str, layers: int, hidden: int, heads: int, kv: int, inter: int, params_m: float) -> None:
    cfg = qwen3_config(size)
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads) == (
        layers, hidden, heads, kv)
    assert (cfg.intermediate_size, cfg.head_dim, cfg.rms_norm_eps) == (inter, 128, 1e-6)
    assert cfg.vocab_size in (151669, 151665)
    theta = getattr(cfg, "rope_theta", None) or cfg.rope_parameters["rope_theta"]
    assert theta == 1000000.0
    # Built on the meta device: no memory, but the parameter count is the model's own.
    assert _parameters(size) / 1e6 == pytest.approx(params_m, abs=0.1)


def test_unknown_size_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown Qwen3 size '1B'.*0\.6B"):
        make_qwen3(tmp_path / "x", size="1B")
    assert not (tmp_path / "x").exists()


def test_tiny_is_make_tiny_qwen3(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    a = load_file(str(Path(make_tiny_qwen3(tmp_path / "a", seed=3)) / "model.safetensors"))
    b = load_file(str(Path(make_qwen3(tmp_path / "b", size="tiny", seed=3)) / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    pool = json.loads((tmp_path / "b" / "1_Pooling" / "config.json").read_text())
    assert pool["word_embedding_dimension"] == 64 and pool["pooling_mode_lasttoken"]


def test_config_carries_the_legacy_keys_transformers_4_reads(tmp_path: Path) -> None:
    """transformers 5 writes ``rope_parameters``; Infinity's and optimum's transformers 4.57 reads ``rope_theta``.

    Without the top-level key, a transformers 4.x reader silently falls back to RoPE theta 10,000 and
    computes different vectors (benchmarks/full_size.py compares Infinity's vectors with LocalEmbedder's).
    """
    cfg = json.loads((Path(make_qwen3(tmp_path / "m", size="tiny")) / "config.json").read_text())
    assert cfg["rope_theta"] == 1000000.0
    assert cfg["rope_parameters"]["rope_theta"] == 1000000.0
    assert cfg["torch_dtype"] == cfg["dtype"] == "float32"
    from transformers import AutoConfig

    loaded = AutoConfig.from_pretrained(str(tmp_path / "m"))  # and transformers 5 still reads it
    assert loaded.rope_parameters["rope_theta"] == 1000000.0


def test_layers_keeps_the_shape_and_changes_the_depth(tmp_path: Path) -> None:
    """``layers=1`` (benchmarks/cpu_peers.py): one layer, every tensor of the same shape as the full model's."""
    from safetensors.torch import load_file

    one = Path(make_qwen3(tmp_path / "one", size="tiny", seed=3, layers=1))
    cfg = json.loads((one / "config.json").read_text())
    assert (cfg["num_hidden_layers"], cfg["hidden_size"], cfg["intermediate_size"]) == (1, 64, 128)
    weights = load_file(str(one / "model.safetensors"))
    assert sorted({k.split(".")[1] for k in weights if k.startswith("layers.")}) == ["0"]
    full = load_file(str(Path(make_qwen3(tmp_path / "full", size="tiny", seed=3)) / "model.safetensors"))
    assert {k: v.shape for k, v in weights.items()} == {
        k: v.shape for k, v in full.items() if not k.startswith("layers.") or k.startswith("layers.0.")}


@pytest.mark.parametrize("layers", [0, -1, 1.5, True, "2"])
def test_layers_must_be_a_positive_int(tmp_path: Path, layers: object) -> None:
    # bad input: a depth of zero, negative, fractional, a bool or a string
    with pytest.raises(ValueError, match=r"layers must be a positive int or None, got "):
        make_qwen3(tmp_path / "x", size="tiny", layers=layers)  # type: ignore[arg-type]
    assert not (tmp_path / "x").exists()
