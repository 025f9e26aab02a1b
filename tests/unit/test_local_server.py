"""The serve app in-process (ASGI, no socket): request gathering, auth, OpenAI error shape, any Embedder."""

from __future__ import annotations

import asyncio
import base64
import threading

import httpx
import numpy as np
import pytest

from qwen_embed_adapters.server import build_app
from qwen_embed_adapters.testing import FakeEmbedder


class SlowFake(FakeEmbedder):
    """A FakeEmbedder whose batches wait until released, so requests pile up while one runs."""

    def __init__(self) -> None:
        super().__init__(dimensions=32)
        self.release = threading.Event()

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        self.release.wait(timeout=20)
        return super()._embed_batch(texts)


async def _send_all(app: object, bodies: list[dict], headers: dict[str, str] | None = None) -> list:
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app):  # type: ignore[attr-defined]
        async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers) as client:
            return list(await asyncio.gather(*[client.post("/v1/embeddings", json=b) for b in bodies]))


@pytest.mark.parametrize(("gather_ms", "max_batches"), [(50.0, 3), (0.0, 16)])
async def test_concurrent_requests_are_gathered(gather_ms: float, max_batches: int) -> None:
    emb = SlowFake()
    app = build_app(emb, model_name="fake", gather_ms=gather_ms)
    texts = [f"text {i}" for i in range(16)]
    loop = asyncio.get_running_loop()
    loop.call_later(0.2, emb.release.set)  # let requests queue up behind the first batch
    resps = await _send_all(app, [{"input": t, "model": "fake", "encoding_format": "float"} for t in texts])
    assert [r.status_code for r in resps] == [200] * 16
    got = np.array([r.json()["data"][0]["embedding"] for r in resps], dtype=np.float32)
    np.testing.assert_allclose(got, FakeEmbedder(dimensions=32).embed_documents(texts), atol=1e-6)
    if gather_ms > 0:
        assert 1 <= len(emb.calls) <= max_batches  # 16 requests became at most a few model calls
        assert sorted(t for call in emb.calls for t in call) == sorted(texts)
    else:
        assert len(emb.calls) == 16


async def test_base64_and_auth_in_process() -> None:
    """Bad input: a request without the bearer key is refused with 401 and the key is never echoed."""
    emb = FakeEmbedder(dimensions=32)
    app = build_app(emb, model_name="fake", api_key="k3y")
    [denied] = await _send_all(app, [{"input": "x"}])
    assert denied.status_code == 401 and "k3y" not in denied.text
    [ok] = await _send_all(app, [{"input": ["x", "y"], "encoding_format": "base64", "dimensions": 8}],
                           headers={"authorization": "Bearer k3y"})
    data = ok.json()["data"]
    vecs = np.stack([np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in data])
    full = emb.embed_documents(["x", "y"])[:, :8]
    np.testing.assert_allclose(vecs, full / np.linalg.norm(full, axis=1, keepdims=True), atol=1e-6)
    assert [d["index"] for d in data] == [0, 1]


async def test_unknown_route_has_openai_error_shape() -> None:
    """Bad input: a GET on a route that does not exist."""
    app = build_app(FakeEmbedder(dimensions=32), model_name="fake")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        resp = await client.get("/v1/nothing")
    assert resp.status_code == 404
    assert set(resp.json()["error"]) == {"message", "type", "param", "code"}


async def test_the_gap_takes_a_trickling_burst_whole_and_closes_a_lone_batch_early() -> None:
    # Requests 40 ms apart, a 150 ms gap and a 5 s window: one model call for all six. A fixed window of
    # 25 ms (no gap) cuts the same burst in pieces. A lone request then waits the gap, not the 5 s window.
    from qwen_embed_adapters.server.gatherer import RequestGatherer

    async def burst(gatherer: RequestGatherer, calls: list[list[str]]) -> None:
        async def one(i: int) -> np.ndarray:
            await asyncio.sleep(0.04 * i)
            return await gatherer.submit([f"t{i}"], 1)

        got = await asyncio.gather(*[one(i) for i in range(6)])
        assert [float(g[0, 0]) for g in got] == [float(i) for i in range(6)]  # each request gets its own row
        assert sorted(t for c in calls for t in c) == [f"t{i}" for i in range(6)]

    def embed_into(calls: list[list[str]]):
        def embed(texts: list[str]) -> np.ndarray:
            calls.append(list(texts))
            return np.array([[float(t[1:])] for t in texts], dtype=np.float32)
        return embed

    gapped: list[list[str]] = []
    g = RequestGatherer(embed_into(gapped), window_s=5.0, gap_s=0.15, max_tokens=100)
    await g.start()
    try:
        await burst(g, gapped)
        assert len(gapped) == 1
        loop = asyncio.get_running_loop()
        started = loop.time()
        await g.submit(["t9"], 1)
        assert loop.time() - started < 2.5  # the gap closed it, not the 5 s window
    finally:
        await g.stop()
    fixed: list[list[str]] = []
    g = RequestGatherer(embed_into(fixed), window_s=0.025, max_tokens=100)
    await g.start()
    try:
        await burst(g, fixed)
        assert len(fixed) >= 2
    finally:
        await g.stop()


def _two_a_pass(lengths: list[int], keep_order: bool = False) -> list[list[int]]:
    """A ``plan`` for the gatherer tests: two texts a pass, in the order given or longest first."""
    order = list(range(len(lengths))) if keep_order else sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + 2] for i in range(0, len(order), 2)]


def _rows_of(texts: list[str]) -> np.ndarray:
    """One float per text, read from its name (``"a-10"`` -> 10.0): every row shows which text it came from."""
    return np.array([[float(t.split("-")[1])] for t in texts], dtype=np.float32)


async def test_gathered_call_answers_each_request_after_its_last_pass() -> None:
    """With ``plan``, a gathered call runs pass by pass: a request whose texts were all in the first pass is
    answered while the second pass is still running (its client can send its next request meanwhile), every
    row lands on its own request, and a failure in a later pass reaches only the requests still waiting."""
    from qwen_embed_adapters.server.gatherer import RequestGatherer

    second_started, release = threading.Event(), threading.Event()
    calls: list[list[str]] = []

    def embed(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        if len(calls) == 2:
            second_started.set()
            release.wait(timeout=20)
            if "boom" in texts:
                raise RuntimeError("pass failed")
        return _rows_of(texts)

    g = RequestGatherer(embed, window_s=5.0, gap_s=0.1, max_tokens=1000, plan=_two_a_pass)
    await g.start()
    try:
        long_job = asyncio.ensure_future(g.submit(["a-10", "b-11"], [50, 40]))  # both in pass 1
        short_job = asyncio.ensure_future(g.submit(["c-12", "d-13"], [5, 4]))  # pass 2
        while not second_started.is_set():
            await asyncio.sleep(0.01)
        got = await asyncio.wait_for(long_job, 5)  # answered while pass 2 is still blocked
        assert got[:, 0].tolist() == [10.0, 11.0] and not short_job.done()
        release.set()
        assert (await asyncio.wait_for(short_job, 5))[:, 0].tolist() == [12.0, 13.0]
        assert calls == [["a-10", "b-11"], ["c-12", "d-13"]]

        # The same shape with a failing second pass: the first request keeps its answer.
        calls.clear()
        second_started.clear()
        release.clear()
        ok = asyncio.ensure_future(g.submit(["e-1"], [30]))
        bad = asyncio.ensure_future(g.submit(["f-2", "boom", "g-3"], [29, 2, 1]))
        while not second_started.is_set():
            await asyncio.sleep(0.01)
        release.set()
        assert (await asyncio.wait_for(ok, 5))[:, 0].tolist() == [1.0]
        with pytest.raises(RuntimeError, match="pass failed"):
            await asyncio.wait_for(bad, 5)
    finally:
        release.set()
        await g.stop()


async def test_requests_arriving_during_an_in_order_call_join_its_line() -> None:
    """A request that arrives while a first-come-first-served call runs rides in that call's next pass (the
    end of the line), not in a new call after the whole call: the closed-loop client answered by one pass
    is not held for the rest. One that would break the order (texts of very different lengths) waits for the
    next call instead; one over the token budget waits until the line has room."""
    from qwen_embed_adapters.server.gatherer import RequestGatherer

    first_started, release = threading.Event(), threading.Event()
    calls: list[list[str]] = []

    def embed(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        if len(calls) == 1:
            first_started.set()
            release.wait(timeout=20)
        return _rows_of(texts)

    g = RequestGatherer(embed, window_s=5.0, gap_s=0.05, max_tokens=100, plan=_two_a_pass)
    await g.start()
    try:
        a = asyncio.ensure_future(g.submit(["a-1", "a-2", "a-3"], [10, 10, 10]))
        while not first_started.is_set():
            await asyncio.sleep(0.01)
        b = asyncio.ensure_future(g.submit(["b-4"], [10]))  # like length: joins the line
        c = asyncio.ensure_future(g.submit(["c-5", "c-6", "c-7", "c-8"], [1, 30, 1, 30]))  # in order pads 1.7x
        await asyncio.sleep(0.05)
        release.set()
        assert (await asyncio.wait_for(a, 5))[:, 0].tolist() == [1.0, 2.0, 3.0]
        assert (await asyncio.wait_for(b, 5))[:, 0].tolist() == [4.0]
        assert (await asyncio.wait_for(c, 5))[:, 0].tolist() == [5.0, 6.0, 7.0, 8.0]
        assert calls == [["a-1", "a-2"], ["a-3", "b-4"], ["c-6", "c-8"], ["c-5", "c-7"]]
        assert g.batches == 3  # a's gathering, b joining it, c's own call

        # Over the token budget (100): f waits until the line has room for it, then joins the same line.
        calls.clear()
        first_started.clear()
        release.clear()
        e = asyncio.ensure_future(g.submit(["e-1", "e-2", "e-3", "e-4"], [25, 25, 25, 25]))
        while not first_started.is_set():
            await asyncio.sleep(0.01)
        d = asyncio.ensure_future(g.submit(["d-9"], [35]))  # 50 left in line + 35 fits
        f = asyncio.ensure_future(g.submit(["f-10"], [40]))  # 85 + 40 does not; after the next pass 35 + 40 does
        await asyncio.sleep(0.05)
        release.set()
        got = await asyncio.wait_for(asyncio.gather(e, d, f), 5)
        assert [v[:, 0].tolist() for v in got] == [[1.0, 2.0, 3.0, 4.0], [9.0], [10.0]]
        assert calls == [["e-1", "e-2"], ["e-3", "e-4"], ["d-9", "f-10"]]
    finally:
        release.set()
        await g.stop()


async def test_a_line_under_steady_load_lets_go_of_the_requests_it_answered() -> None:
    """A line that requests keep joining never ends; the requests it has answered (their texts, their vectors)
    must not stay referenced until it does, or a server under steady load grows without bound."""
    import gc

    from qwen_embed_adapters.server.gatherer import RequestGatherer, _Job

    entered, go = threading.Semaphore(0), threading.Semaphore(0)

    def embed(texts: list[str]) -> np.ndarray:
        entered.release()
        go.acquire(timeout=20)
        return _rows_of(texts)

    async def pass_running() -> None:
        while not entered.acquire(blocking=False):
            await asyncio.sleep(0.01)

    def alive(text: str) -> int:
        gc.collect()
        return sum(1 for o in gc.get_objects() if isinstance(o, _Job) and o.texts == [text])

    g = RequestGatherer(embed, window_s=5.0, gap_s=0.01, max_tokens=100, plan=_two_a_pass)
    await g.start()
    try:
        answered = []
        pending = asyncio.ensure_future(g.submit(["r-0"], [10]))
        for k in range(1, 5):  # each pass runs one request; the next one arrives meanwhile and joins the line
            await pass_running()
            nxt = asyncio.ensure_future(g.submit([f"r-{k}"], [10]))
            await asyncio.sleep(0.02)
            go.release()
            answered.append((await asyncio.wait_for(pending, 5))[:, 0].tolist())
            pending = nxt
        await pass_running()
        assert answered == [[0.0], [1.0], [2.0], [3.0]]
        assert g.batches == 5  # one gathering, four joins: the same line all along
        assert alive("r-0") == alive("r-1") == 0
        go.release()
        assert (await asyncio.wait_for(pending, 5))[:, 0].tolist() == [4.0]
    finally:
        for _ in range(3):
            go.release()
        await g.stop()


async def test_a_call_cut_at_the_budget_takes_its_even_share_of_the_waiting_requests() -> None:
    """Nine clients in a closed loop, four requests to a budget: calls of 3, 3 and 3, not 4, 4 and 1, so no
    request waits one call more than the others (the step that set p99 with 64 clients, calls of 9)."""
    import time as clock

    from qwen_embed_adapters.server.gatherer import RequestGatherer

    sizes: list[int] = []

    def embed(texts: list[str]) -> np.ndarray:
        sizes.append(len(texts))
        clock.sleep(0.02)  # the clients answered by the previous call send their next request meanwhile
        return _rows_of(texts)

    async def client(c: int) -> list[float]:
        return [float((await g.submit([f"t-{c * 10 + r}"], 10))[0, 0]) for r in range(4)]

    g = RequestGatherer(embed, window_s=1.0, gap_s=0.05, max_tokens=40)
    await g.start()
    try:
        got = await asyncio.wait_for(asyncio.gather(*[client(c) for c in range(9)]), 20)
    finally:
        await g.stop()
    assert got == [[float(c * 10 + r) for r in range(4)] for c in range(9)]  # each client its own rows
    assert sizes == [3] * 12


async def test_gatherer_says_idle_once_per_quiet_spell(monkeypatch: pytest.MonkeyPatch) -> None:
    """``on_idle`` (the server's malloc_trim) runs once the model has waited IDLE_AFTER_S with nothing to do,
    once per quiet spell, and never while requests keep coming."""
    from qwen_embed_adapters.server import gatherer as gathering

    monkeypatch.setattr(gathering, "IDLE_AFTER_S", 0.2)
    idle: list[float] = []
    g = gathering.RequestGatherer(lambda texts: np.zeros((len(texts), 2), dtype=np.float32), window_s=0.01,
                                  max_tokens=100, on_idle=lambda: idle.append(1.0))
    await g.start()
    try:
        for _ in range(5):  # busy: 50 ms apart
            await g.submit(["x"], 1)
            await asyncio.sleep(0.05)
        assert idle == []
        await asyncio.sleep(0.6)  # one quiet spell of 3 idle periods: told once
        assert idle == [1.0]
        await g.submit(["y"], 1)
        await asyncio.sleep(0.35)
        assert idle == [1.0, 1.0]
    finally:
        await g.stop()


def test_trim_malloc_hands_freed_heap_back() -> None:
    """Every other of 2,000 blocks of 64 KB freed (holes glibc keeps): trim_malloc gives most of them back."""
    import platform
    import sys

    psutil = pytest.importorskip("psutil")
    from qwen_embed_adapters.server.memory import trim_malloc

    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        pytest.skip("malloc_trim is glibc's")
    proc = psutil.Process()
    blocks = [bytearray(b"x" * (64 * 1024)) for _ in range(2000)]
    kept = blocks[1::2]
    del blocks
    before = proc.memory_info().rss
    assert trim_malloc() is True
    assert before - proc.memory_info().rss > 30 * 2**20  # of the 62.5 MB freed
    assert len(kept) == 1000


async def test_a_call_runs_in_arrival_order_unless_sorting_saves_padding() -> None:
    """Texts of like length (chunks) run first come, first served; texts of very different lengths run in
    length-sorted passes (less padding), the pass holding the oldest request first."""
    from qwen_embed_adapters.local.tokens import plan_token_batches
    from qwen_embed_adapters.server.gatherer import RequestGatherer, _Job

    def plan(lengths: list[int], keep_order: bool = False) -> list[list[int]]:
        return plan_token_batches(lengths, 100, 64, keep_order=keep_order)

    g = RequestGatherer(lambda texts: np.zeros((len(texts), 1), dtype=np.float32), window_s=0.01,
                        max_tokens=1000, plan=plan)
    loop = asyncio.get_running_loop()

    def jobs(counts: list[int]) -> list[_Job]:
        return [_Job([f"t{i}"], [n], loop.create_future()) for i, n in enumerate(counts)]

    chunks = [25, 24, 25, 23, 25, 24]  # in order: 4 + 2, padded 100 + 50; sorted: 100 + 48
    assert g._keeps_order(chunks)
    assert plan(chunks, keep_order=True) == [[0, 1, 2, 3], [4, 5]]  # the passes its line runs
    mixed = [5, 40, 5, 40, 5, 5]  # in order: [5, 40] [5, 40] [5, 5] pads 80 + 80 + 10; sorted 80 + 20
    assert not g._keeps_order(mixed)
    assert g._passes(jobs(mixed)) == [[0, 2, 4, 5], [1, 3]]  # the short texts' pass holds the oldest
    assert RequestGatherer(g._embed, window_s=0.01, max_tokens=1000)._passes(jobs(mixed)) == [[0, 1, 2, 3, 4, 5]]


def test_run_moves_what_is_alive_out_of_the_collector_and_collects_garbage_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``run`` freezes the objects alive before serving (no 200 ms full collections over the model while
    requests wait), after collecting the cyclic garbage so none is frozen with them."""
    import gc
    import weakref

    from qwen_embed_adapters.server import app as app_module

    class Node:
        pass

    garbage = Node()
    garbage.self = garbage  # type: ignore[attr-defined]  # a cycle only the collector frees
    gone = weakref.ref(garbage)
    del garbage
    seen: dict[str, int] = {}

    def fake_serve(app: object, **kwargs: object) -> None:
        seen["frozen"] = gc.get_freeze_count()

    monkeypatch.setattr(app_module, "serve_until_drained", fake_serve)
    gc.disable()  # so that only run's collection can free the cycle
    try:
        app_module.run(build_app(FakeEmbedder(dimensions=8)), port=1)
    finally:
        gc.enable()
        gc.unfreeze()
    assert seen["frozen"] > 10_000
    assert gone() is None
