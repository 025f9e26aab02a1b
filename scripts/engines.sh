#!/usr/bin/env bash
# Build the engine venvs the `engines` test tier runs against, once per machine.
#
#   scripts/engines.sh [infinity|llamacpp|lightrag|tiktoken|all|st-onnx|langchain-hf]
#
# st-onnx (sentence-transformers' ONNX backend, for benchmarks/full_size.py only) and langchain-hf
# (langchain-huggingface's HuggingFaceEmbeddings, for benchmarks/integrations.py only) are not part of `all`:
# no test needs them (the benchmarks' quick runs report them as not built).
#
# Each engine gets its own venv under ${QWEN_EMBED_CACHE:-$HOME/.cache/qwen-embed-adapters}/venvs/NAME,
# because their pins conflict with the project's (.[all,dev]) and with each other. A venv is rebuilt only
# when its spec line below changes (the spec is written into a stamp file), so a warm run takes seconds.
# llama-cpp-python compiles llama.cpp from source (~4.5 min on 2 cores): the built wheel is kept under
# CACHE/wheels and reused by every later venv build. The sdist is kept too: its vendor/llama.cpp carries
# convert_hf_to_gguf.py and gguf-py, which the tests use to convert a tiny Qwen3 to GGUF.
#
# A failed build leaves CACHE/venvs/NAME.failed holding the log path; the tests name that path and fail
# in CI (CI=true, as .ci/run sets) or skip elsewhere (tests/support/engines.py).
set -uo pipefail

CACHE="${QWEN_EMBED_CACHE:-$HOME/.cache/qwen-embed-adapters}"
PYTHON="${PYTHON:-python3}"
# torch is pinned so that pip takes the CPU build from this machine's disk instead of a multi-GB CUDA build.
TORCH="${TORCH:-torch==2.13.0}"
INFINITY_VERSION=0.0.78
LLAMACPP_VERSION=0.3.36
LIGHTRAG_VERSION=1.5.7
INFINITY_SPEC="infinity-emb[server,torch]==${INFINITY_VERSION} ${TORCH}"
# the converter (convert_hf_to_gguf.py) imports torch, transformers, sentencepiece and numpy
LLAMACPP_SPEC="llama-cpp-python[server]==${LLAMACPP_VERSION} ${TORCH} transformers sentencepiece safetensors"

# sentence-transformers 6 and optimum-onnx 0.1 cannot be installed together (pip: ResolutionImpossible),
# so the ONNX backend is measured with the newest pair that resolves.
ST_ONNX_SPEC="sentence-transformers[onnx]==5.7.0 optimum-onnx[onnxruntime]==0.1.0 ${TORCH}"

# langchain-huggingface 1.2.3 requires huggingface-hub<2 while transformers 5.25 requires >=2.4, so it cannot
# join the project's venv (pip would hold transformers back for one benchmark's peer); pip resolves this spec
# to transformers 5.24 and sentence-transformers 6.3, the same code paths as the project's venv.
LANGCHAIN_HF_SPEC="langchain-huggingface==1.2.3 sentence-transformers ${TORCH}"

# lightrag-server (the [api] extra pulls a large web stack) runs as a process like the engines
LIGHTRAG_SPEC="lightrag-hku[api]==${LIGHTRAG_VERSION}"

mkdir -p "$CACHE/venvs" "$CACHE/logs" "$CACHE/wheels" "$CACHE/src"

log() { echo "[engines] $*" >&2; }

# build_venv NAME SPEC COMMANDS...: runs COMMANDS (a shell function) with $VENV set, logs, stamps.
build_venv() {
    local name="$1" spec="$2" fn="$3"
    local venv="$CACHE/venvs/$name" stamp="$CACHE/venvs/$name/.engines-stamp" logf="$CACHE/logs/$name.log"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$spec" ]]; then
        log "$name: up to date ($venv)"
        return 0
    fi
    log "$name: building $venv (log: $logf)"
    local t0=$SECONDS
    rm -rf "$venv" "$CACHE/venvs/$name.failed"
    if ( set -e; "$PYTHON" -m venv "$venv"; VENV="$venv"; "$fn" ) >"$logf" 2>&1; then
        echo "$spec" >"$stamp"
        log "$name: built in $((SECONDS - t0)) s"
        return 0
    fi
    echo "$logf" >"$CACHE/venvs/$name.failed"
    log "$name: FAILED after $((SECONDS - t0)) s, see $logf"
    tail -n 20 "$logf" >&2
    return 1
}

install_infinity() {
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q "$TORCH"
    # shellcheck disable=SC2086
    "$VENV/bin/pip" install -q $INFINITY_SPEC
    "$VENV/bin/infinity_emb" --help >/dev/null
}

install_llamacpp() {
    "$VENV/bin/pip" install -q --upgrade pip
    local wheel
    wheel="$(ls "$CACHE"/wheels/llama_cpp_python-"${LLAMACPP_VERSION}"-*.whl 2>/dev/null | head -n 1)"
    if [[ -z "$wheel" ]]; then
        echo "compiling llama-cpp-python ${LLAMACPP_VERSION} (about 4.5 min on 2 cores)"
        "$VENV/bin/pip" wheel --no-deps --no-binary llama-cpp-python -w "$CACHE/wheels" \
            "llama-cpp-python==${LLAMACPP_VERSION}"
        wheel="$(ls "$CACHE"/wheels/llama_cpp_python-"${LLAMACPP_VERSION}"-*.whl | head -n 1)"
    fi
    local src="$CACHE/src/llama_cpp_python-${LLAMACPP_VERSION}"
    if [[ ! -f "$src/vendor/llama.cpp/convert_hf_to_gguf.py" ]]; then
        "$VENV/bin/pip" download -q --no-deps --no-binary :all: -d "$CACHE/src" "llama-cpp-python==${LLAMACPP_VERSION}"
        tar -C "$CACHE/src" -xzf "$CACHE/src/llama_cpp_python-${LLAMACPP_VERSION}.tar.gz"
    fi
    "$VENV/bin/pip" install -q "$TORCH"
    # shellcheck disable=SC2086
    "$VENV/bin/pip" install -q "${wheel}[server]" ${LLAMACPP_SPEC#* }
    "$VENV/bin/python" -c "import llama_cpp, llama_cpp.server"
}

# tiktoken's encodings (lightrag-server tokenises with o200k_base, LangChain with cl100k_base) are downloaded
# from openaipublic.blob.core.windows.net, which these machines cannot reach. npm's js-tiktoken carries the
# same ranks in a compressed form: expand them to tiktoken's file format under CACHE/tiktoken, named the way
# tiktoken's own cache names a download (sha1 of the URL), and keep them only when the sha256 equals the
# hash tiktoken itself expects, so tiktoken reads them as its verified download (TIKTOKEN_CACHE_DIR).
JS_TIKTOKEN_VERSION=1.0.21
build_tiktoken() {
    local out="$CACHE/tiktoken" logf="$CACHE/logs/tiktoken.log"
    if [[ -f "$out/.engines-stamp" ]]; then log "tiktoken: up to date ($out)"; return 0; fi
    mkdir -p "$out"
    if ! ( set -e
        cd "$CACHE/src"
        [[ -f "js-tiktoken-${JS_TIKTOKEN_VERSION}.tgz" ]] || npm pack -q "js-tiktoken@${JS_TIKTOKEN_VERSION}"
        rm -rf js-tiktoken && mkdir js-tiktoken && tar -C js-tiktoken -xzf "js-tiktoken-${JS_TIKTOKEN_VERSION}.tgz"
        "$PYTHON" - "$CACHE/src/js-tiktoken/package/dist/ranks" "$out" <<'PY'
import hashlib, json, sys
from pathlib import Path
ranks, out = Path(sys.argv[1]), Path(sys.argv[2])
expected = {  # tiktoken_ext/openai_public.py
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
for name, sha in expected.items():
    text = (ranks / f"{name}.js").read_text()
    bpe = json.loads(text[text.index("{"):].rstrip().rstrip(";"))["bpe_ranks"]
    pairs = []
    for line in filter(None, bpe.split("\n")):
        _, offset, *tokens = line.split(" ")
        pairs += [(int(offset) + i, tok) for i, tok in enumerate(tokens)]
    data = "".join(f"{tok} {rank}\n" for rank, tok in sorted(pairs)).encode()
    if hashlib.sha256(data).hexdigest() != sha:
        sys.exit(f"{name}: rebuilt file does not match tiktoken's sha256 {sha}")
    url = f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
    (out / hashlib.sha1(url.encode()).hexdigest()).write_bytes(data)
    print(name, "ok")
PY
        touch "$out/.engines-stamp" ) >"$logf" 2>&1; then
        echo "$logf" >"$CACHE/venvs/tiktoken.failed"; log "tiktoken: FAILED, see $logf"; return 1
    fi
    rm -f "$CACHE/venvs/tiktoken.failed"
    log "tiktoken: built $out"
}

install_lightrag() {
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q "$LIGHTRAG_SPEC"
    "$VENV/bin/lightrag-server" --help >/dev/null
}

install_st_onnx() {
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q "$TORCH"
    # shellcheck disable=SC2086
    "$VENV/bin/pip" install -q $ST_ONNX_SPEC
    "$VENV/bin/python" -c "import optimum.onnxruntime, sentence_transformers"
}

install_langchain_hf() {
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q "$TORCH"
    # shellcheck disable=SC2086
    "$VENV/bin/pip" install -q $LANGCHAIN_HF_SPEC
    "$VENV/bin/python" -c "import langchain_huggingface, sentence_transformers"
}

target="${1:-all}"
rc=0
case "$target" in
    infinity) build_venv infinity "$INFINITY_SPEC" install_infinity || rc=1 ;;
    llamacpp) build_venv llamacpp "$LLAMACPP_SPEC" install_llamacpp || rc=1 ;;
    tiktoken) build_tiktoken || rc=1 ;;
    lightrag) build_venv lightrag "$LIGHTRAG_SPEC" install_lightrag || rc=1 ;;
    st-onnx) build_venv st-onnx "$ST_ONNX_SPEC" install_st_onnx || rc=1 ;;
    langchain-hf) build_venv langchain-hf "$LANGCHAIN_HF_SPEC" install_langchain_hf || rc=1 ;;
    all)
        build_tiktoken || rc=1
        build_venv infinity "$INFINITY_SPEC" install_infinity || rc=1
        build_venv llamacpp "$LLAMACPP_SPEC" install_llamacpp || rc=1
        build_venv lightrag "$LIGHTRAG_SPEC" install_lightrag || rc=1
        ;;
    *) echo "usage: $0 [infinity|llamacpp|lightrag|tiktoken|all|st-onnx|langchain-hf]" >&2; exit 2 ;;
esac
exit $rc
