#!/usr/bin/env bash
# Build the engine venvs the `engines` test tier runs against, once per machine.
#
#   scripts/engines.sh [infinity|llamacpp|all]
#
# Each engine gets its own venv under ${QWEN_EMBED_CACHE:-$HOME/.cache/qwen-embed-adapters}/venvs/NAME,
# because their pins conflict with the project's (.[all,dev]) and with each other. A venv is rebuilt only
# when its spec line below changes (the spec is written into a stamp file), so a warm run takes seconds.
# llama-cpp-python compiles llama.cpp from source (~4.5 min on 2 cores): the built wheel is kept under
# CACHE/wheels and reused by every later venv build. The sdist is kept too: its vendor/llama.cpp carries
# convert_hf_to_gguf.py and gguf-py, which the tests use to convert a tiny Qwen3 to GGUF.
#
# A failed build leaves CACHE/venvs/NAME.failed holding the log path; the tests skip with that path.
set -uo pipefail

CACHE="${QWEN_EMBED_CACHE:-$HOME/.cache/qwen-embed-adapters}"
PYTHON="${PYTHON:-python3}"
# torch is pinned so that pip takes the CPU build from this machine's disk instead of a multi-GB CUDA build.
TORCH="${TORCH:-torch==2.13.0}"
INFINITY_VERSION=0.0.78
LLAMACPP_VERSION=0.3.36
INFINITY_SPEC="infinity-emb[server,torch]==${INFINITY_VERSION} ${TORCH}"
# the converter (convert_hf_to_gguf.py) imports torch, transformers, sentencepiece and numpy
LLAMACPP_SPEC="llama-cpp-python[server]==${LLAMACPP_VERSION} ${TORCH} transformers sentencepiece safetensors"

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

target="${1:-all}"
rc=0
case "$target" in
    infinity) build_venv infinity "$INFINITY_SPEC" install_infinity || rc=1 ;;
    llamacpp) build_venv llamacpp "$LLAMACPP_SPEC" install_llamacpp || rc=1 ;;
    all)
        build_venv infinity "$INFINITY_SPEC" install_infinity || rc=1
        build_venv llamacpp "$LLAMACPP_SPEC" install_llamacpp || rc=1
        ;;
    *) echo "usage: $0 [infinity|llamacpp|all]" >&2; exit 2 ;;
esac
exit $rc
