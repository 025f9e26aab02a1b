# `make test` and `make demo` each set up .venv by themselves, from nothing.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
# torch is pinned so that pip takes the CPU build from this machine's disk instead of a multi-GB CUDA build.
TORCH ?= torch==2.13.0
PYTEST_ARGS ?=
# each tier records its tests' outcomes here (tests/support/outcomes.py); `make check-compat` reads them
OUTCOMES := .pytest_outcomes

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export ANONYMIZED_TELEMETRY := False
export HAYSTACK_TELEMETRY_ENABLED := False

.PHONY: venv test lint typecheck unit integration demo bench clean engines test-engines test-integrations-compat test-db images check-compat

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH)"
	$(PIP) install -q -e ".[all,dev,bench]" "$(TORCH)"
	touch $(STAMP)

venv: $(STAMP)

lint: venv
	$(VENV)/bin/ruff check qwen_embed_adapters tests benchmarks examples

typecheck: venv
	$(VENV)/bin/mypy

test: lint typecheck
	env -u MILVUS_URI $(VENV)/bin/pytest -q -rs --durations=20 -m "not engines and not docker and not standalone" \
		--outcomes-file $(OUTCOMES)/test.json $(PYTEST_ARGS)

unit: venv
	$(VENV)/bin/pytest -q tests/unit $(PYTEST_ARGS)

integration: venv
	env -u MILVUS_URI $(VENV)/bin/pytest -q -rs tests/integration $(PYTEST_ARGS)

# Real engines (Infinity, llama.cpp's server, lightrag-server) in their own venvs under
# ${QWEN_EMBED_CACHE:-~/.cache/qwen-embed-adapters}/venvs, built once per machine; warm runs skip the builds.
engines:
	bash scripts/engines.sh all

test-engines: venv engines
	env -u MILVUS_URI $(VENV)/bin/pytest -q -rs -m engines tests/engines --outcomes-file $(OUTCOMES)/engines.json \
		$(PYTEST_ARGS)

# Framework stores that pin older DB SDKs (langchain-pinecone: pinecone<8; LlamaIndex Milvus: pymilvus<3;
# langchain-postgres: pgvector<0.4),
# in their own venv cached per machine. Cold ~4 min (venv build, warm pip cache), warm ~30 s.
test-integrations-compat:
	env -u MILVUS_URI PYTHONPATH=$(CURDIR) $$(bash scripts/integrations_compat_venv.sh) -m pytest -q -rs \
		-p no:cacheprovider tests/integration/test_integrations_compat.py tests/integration/test_integrations_langchain_postgres.py \
		tests/integration/test_integrations_llamaindex.py::test_vector_store_index_over_milvus_lite \
		--outcomes-file $(OUTCOMES)/compat.json $(PYTEST_ARGS)

demo: venv
	env -u MILVUS_URI $(VENV)/bin/qwen-embed demo

# Every figure of docs/benchmarks.md at its documented size: sections with markers are rewritten in place, the
# others appended (then edit the page). About 70 minutes on this 2-core VM when quiet, summed from the scripts'
# own documented runs: full_size's three 0.6B engines ~20, cpu_peers ~20, faiss_search (HNSW build) ~7, scale_ray ~7, the
# others 1-3 each; plus the peers' venvs on first use (`scripts/engines.sh`, a few minutes each; a failed
# build does not stop the run: the peer's row then says how to build it).
# `make test` runs each script with --quick instead (tests/integration/test_benchmarks_quick.py).
BENCH_DOCS := docs/benchmarks.md
bench: venv
	-bash scripts/engines.sh langchain-hf
	-bash scripts/engines.sh infinity
	-bash scripts/engines.sh st-onnx
	-bash scripts/engines.sh llamacpp
	$(PY) benchmarks/remote_throughput.py --write
	$(PY) benchmarks/integrations.py --write
	$(PY) benchmarks/local_throughput.py
	$(PY) benchmarks/serve_batching.py
	$(PY) benchmarks/serve_load.py
	$(PY) benchmarks/chroma_ingest.py --append-docs
	$(PY) benchmarks/milvus_ingest.py --append-docs
	$(PY) benchmarks/faiss_search.py --omp-threads 1 --append $(BENCH_DOCS)
	$(PY) benchmarks/ingest_memory.py
	env -u MILVUS_URI $(PY) benchmarks/scale.py --skip-ray --write
	env -u MILVUS_URI $(PY) benchmarks/scale_ray.py --n 20000 --append-docs
	$(PY) benchmarks/full_size.py --size 0.6B --texts 64
	$(PY) benchmarks/cpu_peers.py
	$(PY) benchmarks/space_drift.py    # its table is docs/space.md's (printed, not written)
	$(PY) benchmarks/cache_reingest.py --append $(BENCH_DOCS)
	@echo "gpu_check.py needs a CUDA GPU: $(PY) benchmarks/gpu_check.py --device cuda (docs/benchmarks.md, GPU check)"

# The database tiers (docs/testing.md): Docker installed/started and the local Chroma/Milvus images built
# when absent (cached per machine), the milvus-server venv, then every docker/standalone test.
images:
	bash tests/containers/build_images.sh
	bash tests/containers/milvus_venv.sh >/dev/null

test-db: venv images
	env -u MILVUS_URI $(VENV)/bin/pytest -q -rs -m "docker or standalone" --outcomes-file $(OUTCOMES)/db.json \
		$(PYTEST_ARGS)

# Every claim of docs/compatibility.md names a test that ran and passed in the tiers above (.ci/run runs
# this last; a partial run of your own is never checked).
check-compat: venv
	$(PY) -m tests.support.compat_table $(OUTCOMES)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(OUTCOMES)
