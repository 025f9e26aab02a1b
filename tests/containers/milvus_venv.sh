#!/usr/bin/env bash
# A venv holding the `milvus` 2.3.5 wheel (a real Milvus standalone binary: `milvus-server`), cached per
# machine. Prints the path of its milvus-server. Reused when present (FORCE=1 rebuilds).
set -euo pipefail
CACHE=${QWEN_EMBED_CACHE:-$HOME/.cache/qwen-embed-adapters}
VENV=$CACHE/venvs/milvus-server
if [ "${FORCE:-0}" = 1 ] || [ ! -x "$VENV/bin/milvus-server" ]; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "milvus==2.3.5" "setuptools<70" >&2
fi
echo "$VENV/bin/milvus-server"
