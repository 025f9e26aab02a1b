#!/usr/bin/env bash
# Build (once per machine) the venv for framework stores that pin older database SDKs than the project:
# langchain-pinecone (pinecone<8), llama-index-vector-stores-milvus (pymilvus<3) and langchain-postgres
# (pgvector<0.4, while the project venv has pgvector 0.5). Prints its python.
# Cached under ${QWEN_EMBED_CACHE:-$HOME/.cache/qwen-embed-adapters}/venvs/, keyed by this file and
# pyproject.toml; the tests run the checkout's code through PYTHONPATH, so one venv serves every clone.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH="${TORCH:-torch==2.13.0}"
PKGS="langchain-core langchain-tests langchain-pinecone>=0.2 llama-index-core llama-index-vector-stores-milvus>=1.0 langchain-postgres>=0.0.14"
key=$(cat "$0" pyproject.toml | sha256sum | cut -c1-12)
root="${QWEN_EMBED_CACHE:-$HOME/.cache/qwen-embed-adapters}/venvs"
venv="$root/integrations-compat-$key"
if [ ! -f "$venv/.installed" ]; then
  rm -rf "$venv"
  mkdir -p "$root"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip >&2
  "$venv/bin/pip" install -q "$TORCH" >&2
  # the project's own dependencies (not the milvus/pinecone extras: these pin their own SDKs here; the
  # pgvector extra for the PostgreSQL server, its pgvector package resolved below 0.4 for langchain-postgres)
  # shellcheck disable=SC2086
  "$venv/bin/pip" install -q "$TORCH" ".[local,server,dev,pgvector]" $PKGS >&2
  "$venv/bin/pip" uninstall -q -y qwen-embed-adapters >&2  # the checkout is used through PYTHONPATH
  touch "$venv/.installed"
fi
echo "$venv/bin/python"
