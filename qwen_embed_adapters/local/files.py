"""Finding a model folder (path, $QWEN_EMBED_MODEL, Hugging Face and ModelScope caches, hub) and reading
its sentence-transformers files (pooling, normalisation, prompts). No torch here."""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import models
from ..errors import ConfigurationError

logger = logging.getLogger("qwen_embed_adapters.local")

DEFAULT_MODEL = "Qwen/Qwen3-Embedding-0.6B"
MODEL_ENV = "QWEN_EMBED_MODEL"
_ST_POOLING_ORDER = (
    ("pooling_mode_cls_token", "cls"),
    ("pooling_mode_max_tokens", "max"),
    ("pooling_mode_mean_tokens", "mean"),
    ("pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len"),
    ("pooling_mode_weightedmean_tokens", "weightedmean"),
    ("pooling_mode_lasttoken", "lasttoken"),
)


def _modelscope_candidates(repo_id: str) -> list[Path]:
    root = Path(os.environ.get("MODELSCOPE_CACHE", "~/.cache/modelscope/hub")).expanduser()
    variants = {repo_id, repo_id.replace(".", "___")}  # ModelScope stores "0.6B" as "0___6B"
    out: list[Path] = []
    for v in sorted(variants):
        out += [root / v, root / "models" / v]
    return out


def _repo_id(model: str) -> str | None:
    """The hub id for a model name: ``org/name`` as is; a bare Qwen3-Embedding name gets ``Qwen/``."""
    if re.fullmatch(r"[\w.-]+/[\w.-]+", model):
        return model
    if re.fullmatch(r"[\w.-]+", model) and models.is_qwen3(model):
        return f"Qwen/{model}"
    return None


def _offline() -> bool:
    return any(
        os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
        for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def resolve_model_path(model: str | None = None) -> Path:
    """Find a model folder, looking in order at: the path given, ``$QWEN_EMBED_MODEL`` (when no model
    is given), the Hugging Face cache, the ModelScope cache, then the Hugging Face hub (unless offline).

    Raises ConfigurationError naming every place it looked.
    """
    looked: list[str] = []
    if model is None:
        env = os.environ.get(MODEL_ENV, "").strip()
        if env:
            model = env
            looked.append(f"${MODEL_ENV}={env!r}")
        else:
            model = DEFAULT_MODEL
            looked.append(f"${MODEL_ENV} (not set; using the default {DEFAULT_MODEL!r})")
    if not isinstance(model, str) or not model.strip():
        raise ConfigurationError(f"model must be a folder path or a hub id, got {model!r}")
    folder = Path(model).expanduser()
    if folder.is_dir():
        if (folder / "config.json").is_file() or (folder / "modules.json").is_file():
            return folder.resolve()
        looked.append(f"the folder {str(folder)!r} (it has no config.json)")
    else:
        looked.append(f"a local folder {str(folder)!r} (does not exist)")
    repo_id = _repo_id(model)
    if repo_id is None:
        raise ConfigurationError(
            f"model {model!r} not found; looked at: " + "; ".join(looked)
            + ". Pass the path of a model folder or a hub id such as 'Qwen/Qwen3-Embedding-0.6B'."
        )
    snapshot_download: Any = None
    hf_cache = "~/.cache/huggingface/hub"
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.constants import HF_HUB_CACHE as hf_cache
    except ImportError:  # pragma: no cover - transformers depends on huggingface_hub
        pass
    if snapshot_download is not None:
        try:
            return Path(snapshot_download(repo_id, local_files_only=True))
        except Exception:  # any miss means "not cached"
            looked.append(f"the Hugging Face cache {str(hf_cache)!r} ({repo_id})")
    for cand in _modelscope_candidates(repo_id):
        if (cand / "config.json").is_file():
            return cand
    looked.append(
        "the ModelScope cache " + ", ".join(repr(str(c)) for c in _modelscope_candidates(repo_id))
    )
    if snapshot_download is not None and not _offline():
        try:
            logger.info("downloading %s from the Hugging Face hub", repo_id)
            return Path(snapshot_download(repo_id))
        except Exception as exc:  # reported below with every other place
            looked.append(f"the Hugging Face hub ({type(exc).__name__}: {str(exc)[:200]})")
    else:
        looked.append("the Hugging Face hub (skipped: HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE is set)")
    raise ConfigurationError(
        f"model {model!r} not found; looked at: " + "; ".join(looked)
        + f". Download it (`huggingface-cli download {repo_id}` or "
        f"`modelscope download --model {repo_id}`), or pass the path of its folder."
    )


@dataclass
class PoolingSpec:
    """How token states become one vector, read from a sentence-transformers folder or inferred."""

    modes: tuple[str, ...] = ("lasttoken",)
    normalize: bool = True
    transformer_path: str = ""
    max_seq_length: int | None = None
    do_lower_case: bool = False
    prompts: dict[str, str] = field(default_factory=dict)
    source: str = "inferred"


def read_pooling_spec(folder: Path, model_type: str | None = None) -> PoolingSpec:
    """Read ``modules.json``, ``1_Pooling/config.json``, ``sentence_bert_config.json`` and the prompts.

    Without ``modules.json``: last-token pooling for Qwen2/Qwen3 models, mean pooling otherwise.
    """
    spec = PoolingSpec()
    st_cfg = folder / "config_sentence_transformers.json"
    if st_cfg.is_file():
        prompts = json.loads(st_cfg.read_text(encoding="utf-8")).get("prompts") or {}
        spec.prompts = {str(k): str(v) for k, v in prompts.items()}
    modules_file = folder / "modules.json"
    if not modules_file.is_file():
        spec.modes = ("lasttoken",) if model_type in ("qwen3", "qwen2") else ("mean",)
        if model_type not in ("qwen3", "qwen2"):
            logger.warning("%s has no modules.json; using mean pooling", folder)
        return spec
    spec.source = "modules.json"
    spec.normalize = False
    modules = json.loads(modules_file.read_text(encoding="utf-8"))
    pooling_seen = False
    for mod in modules:
        kind = str(mod.get("type", "")).rsplit(".", 1)[-1]
        path = str(mod.get("path", ""))
        if kind == "Transformer":
            spec.transformer_path = path
            sbc = folder / path / "sentence_bert_config.json"
            if sbc.is_file():
                cfg = json.loads(sbc.read_text(encoding="utf-8"))
                spec.max_seq_length = cfg.get("max_seq_length")
                spec.do_lower_case = bool(cfg.get("do_lower_case", False))
        elif kind == "Pooling":
            pooling_seen = True
            cfg = json.loads((folder / path / "config.json").read_text(encoding="utf-8"))
            modes = tuple(name for key, name in _ST_POOLING_ORDER if cfg.get(key))
            if "pooling_mode" in cfg and not modes:  # newer configs: {"pooling_mode": "mean"}
                modes = (str(cfg["pooling_mode"]).replace("last_token", "lasttoken"),)
            if not modes:
                raise ConfigurationError(f"{folder / path / 'config.json'} enables no pooling mode")
            if "weightedmean" in modes:
                raise ConfigurationError(f"{folder}: weighted-mean pooling is not supported")
            spec.modes = modes
        elif kind == "Normalize":
            spec.normalize = True
        else:
            raise ConfigurationError(
                f"{folder}/modules.json uses the module {mod.get('type')!r}, which LocalEmbedder does not "
                "implement (it supports Transformer, Pooling and Normalize)"
            )
    if not pooling_seen:
        spec.modes = ("lasttoken",) if model_type in ("qwen3", "qwen2") else ("cls",)
    return spec


__all__ = [
    "DEFAULT_MODEL",
    "MODEL_ENV",
    "PoolingSpec",
    "read_pooling_spec",
    "resolve_model_path",
]
