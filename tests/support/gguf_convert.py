"""Run llama.cpp's own ``convert_hf_to_gguf.py`` on a tiny Qwen3 folder (run with the llamacpp venv's python).

    python tests/support/gguf_convert.py LLAMA_CPP_DIR MODEL_DIR --outfile X.gguf --outtype f32

The converter identifies a BPE tokenizer by hashing the ids it gives for a fixed probe text; a
512-token vocabulary cannot match any known hash, so it stops with "BPE pre-tokenizer was not
recognized". ``make_tiny_qwen3``'s tokenizer uses Qwen2's split regex and ByteLevel, so declaring its
pre-tokenizer ``qwen2`` (what the converter answers for the real Qwen3-Embedding tokenizer) is faithful.
Everything else is the converter as shipped: the pooling type (3 = last) comes from the folder's
sentence-transformers files.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path


def main() -> None:
    src = Path(sys.argv[1]).resolve()
    sys.path[:0] = [str(src / "gguf-py"), str(src)]
    import conversion.base  # the module the converter script imports too (same sys.modules entry)

    conversion.base.TextModel.get_vocab_base_pre = lambda self, tokenizer: "qwen2"  # type: ignore[attr-defined]
    sys.argv = [str(src / "convert_hf_to_gguf.py"), *sys.argv[2:]]
    runpy.run_path(str(src / "convert_hf_to_gguf.py"), run_name="__main__")


if __name__ == "__main__":
    main()
