#!/usr/bin/env bash
# Build (once per machine) the local images the container tier uses when no registry can be reached:
#   qwen-embed-test/debian-bookworm:base   debootstrap minbase + python3, python3-venv, ca-certificates
#   qwen-embed-test/chroma:local            the chromadb wheel's `chroma run` on port 8000
#   qwen-embed-test/milvus:local            the milvus 2.3.5 wheel's `milvus-server` (standalone) on 19530
# Installs docker.io and starts dockerd when absent. A tag that exists is reused (FORCE=1 rebuilds).
set -euo pipefail
BASE=qwen-embed-test/debian-bookworm:base
CHROMA=qwen-embed-test/chroma:local
MILVUS=qwen-embed-test/milvus:local
CHROMADB_VERSION=${CHROMADB_VERSION:-$(${PYTHON:-.venv/bin/python} - <<'PY' 2>/dev/null || echo 1.5.9
import importlib.metadata as m
print(m.version("chromadb"))
PY
)}
CACHE=${QWEN_EMBED_CACHE:-$HOME/.cache/qwen-embed-adapters}
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
log() { echo "[build_images $(date +%T)] $*" >&2; }

if ! command -v dockerd >/dev/null 2>&1; then
  log "installing docker.io"
  $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q docker.io >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  mkdir -p "$CACHE/logs"
  $SUDO sh -c "nohup setsid dockerd >'$CACHE/logs/dockerd.log' 2>&1 &"
  for _ in $(seq 1 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { log "dockerd did not answer; see $CACHE/logs/dockerd.log"; exit 1; }
fi
have() { docker image inspect "$1" >/dev/null 2>&1 && [ "${FORCE:-0}" != 1 ]; }

if ! have "$BASE"; then
  command -v debootstrap >/dev/null 2>&1 || { $SUDO apt-get update -q; DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q debootstrap >/dev/null; }
  ROOTFS=$(mktemp -d /tmp/qwen-rootfs.XXXXXX)
  log "debootstrap into $ROOTFS"
  $SUDO debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$ROOTFS" >/dev/null
  $SUDO tar -C "$ROOTFS" -c . | docker import - "$BASE" >/dev/null
  $SUDO rm -rf "$ROOTFS"
fi

CTX=$(mktemp -d /tmp/qwen-imgctx.XXXXXX)
trap 'rm -rf "$CTX"' EXIT
cp /etc/ssl/certs/ca-certificates.crt "$CTX/host-ca.crt"
if ! have "$CHROMA"; then
  log "building $CHROMA (chromadb==$CHROMADB_VERSION)"
  cat >"$CTX/Dockerfile" <<DOCKER
FROM $BASE
COPY host-ca.crt /etc/ssl/host-ca.crt
ENV PIP_CERT=/etc/ssl/host-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 ANONYMIZED_TELEMETRY=False
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install -q "chromadb==$CHROMADB_VERSION"
EXPOSE 8000
ENTRYPOINT ["/opt/venv/bin/chroma", "run", "--path", "/data", "--host", "0.0.0.0", "--port", "8000"]
DOCKER
  docker build -q --network host -t "$CHROMA" "$CTX" >/dev/null
fi
if ! have "$MILVUS"; then
  log "building $MILVUS (milvus==2.3.5)"
  cat >"$CTX/Dockerfile" <<DOCKER
FROM $BASE
COPY host-ca.crt /etc/ssl/host-ca.crt
ENV PIP_CERT=/etc/ssl/host-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install -q "milvus==2.3.5" "setuptools<70"
EXPOSE 19530
ENTRYPOINT ["/opt/venv/bin/milvus-server", "--data", "/data", "--proxy-port", "19530"]
DOCKER
  docker build -q --network host -t "$MILVUS" "$CTX" >/dev/null
fi
log "images ready: $BASE $CHROMA $MILVUS"
