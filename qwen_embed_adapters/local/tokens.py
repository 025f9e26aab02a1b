"""Tokens and batch planning, the same for every runtime: tokenising (end token appended), padding into
numpy arrays, and length-sorted token-budget batches. No torch here."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..embedder import Batch

logger = logging.getLogger("qwen_embed_adapters.local")

EOT = "<|endoftext|>"

#: padded tokens per forward pass when ``max_batch_tokens`` is not given
ACCELERATOR_BATCH_TOKENS = 16384
CPU_BATCH_TOKENS = 1024
#: ... on a CPU whose cores other work is using (``cpu_is_shared``)
CPU_SHARED_BATCH_TOKENS = 8192


#: forward-pass time over which ``cpu_is_shared`` weighs other processes' CPU use before it decides again
SHARED_CHECK_S = 0.5


class _CpuWatch:
    """Other processes' busy CPU seconds and wall seconds summed over our forward passes since the last
    verdict, and that verdict (None until ``SHARED_CHECK_S`` of passes have been measured)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.others = 0.0
        self.wall = 0.0
        self.shared: bool | None = None


_watch = _CpuWatch()


def _our_cpus() -> frozenset[int] | None:
    """The CPUs this process may run on (``taskset``, a container's cpuset), or None when that is all of them
    or cannot be told (not Linux)."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = frozenset(os.sched_getaffinity(0))
    return None if len(cpus) >= (os.cpu_count() or 1) else cpus


def _our_core_count() -> int:
    cpus = _our_cpus()
    return len(cpus) if cpus is not None else (os.cpu_count() or 1)


def _busy_ticks(lines: Iterable[str], cpus: frozenset[int] | None) -> int | None:
    """Busy ticks since boot from ``/proc/stat`` lines: the first ``cpu`` line's when ``cpus`` is None, else the
    sum of the ``cpuN`` lines of those CPUs. Busy is user, nice, system, irq, softirq and steal: all but idle
    and iowait (time a hypervisor gave our cores to others is sharing too); guest time is already in user
    (proc(5)). Reads no further than the cpu lines, so an open ``/proc/stat`` can be passed. None when the lines
    are not what proc(5) describes."""
    total, seen = 0, 0
    for line in lines:
        fields = line.split()
        if not fields or not fields[0].startswith("cpu"):
            break  # the cpu lines come first
        name = fields[0]
        if cpus is None:
            wanted = name == "cpu"
        else:
            wanted = name[3:].isdigit() and int(name[3:]) in cpus
        if not wanted:
            continue
        if len(fields) < 9 or not all(x.isdigit() for x in fields[1:9]):
            return None
        ticks = [int(x) for x in fields[1:9]]
        total += sum(ticks) - ticks[3] - ticks[4]
        seen += 1
        if cpus is None:
            break
    return total if seen else None


def _cpu_reading() -> tuple[float, float, float] | None:
    """(monotonic time, CPU seconds our CPUs have spent busy since boot, CPU seconds of this process); None
    where ``/proc/stat`` cannot be read (not Linux).

    Our CPUs are the whole machine unless this process is pinned to some of them (``_our_cpus``): a server
    given two cores of a larger machine does not count work on the other cores as sharing. Ours is
    ``os.times()`` user + system, all our threads, not our children.
    """
    cpus = _our_cpus()
    try:
        with open("/proc/stat", encoding="ascii") as f:
            busy = _busy_ticks(f, cpus)
    except OSError:
        return None
    if busy is None:
        return None
    mine = os.times()
    return time.monotonic(), busy / os.sysconf("SC_CLK_TCK"), mine.user + mine.system


class CpuPassWatch:
    """Measures one forward pass for ``cpu_is_shared``: ``with CpuPassWatch(): <the pass>`` (a runtime on a CPU
    wraps each pass in one). Costs two reads of ``/proc/stat``; does nothing where it cannot be read."""

    def __enter__(self) -> CpuPassWatch:
        self.start = _cpu_reading()
        return self

    def __exit__(self, *exc: object) -> None:
        end = _cpu_reading() if self.start is not None else None
        if end is None or self.start is None:
            return
        wall = end[0] - self.start[0]
        others = (end[1] - self.start[1]) - (end[2] - self.start[2])
        with _watch.lock:
            _watch.wall += wall
            _watch.others += others
            if _watch.wall >= SHARED_CHECK_S:
                cores = _our_core_count()
                _watch.shared = _watch.others / _watch.wall > 0.5 * max(1, cores // 2)
                _watch.wall = _watch.others = 0.0


def _load_says_shared() -> bool:
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return False
    cores = _our_core_count()
    return load > cores + max(1, cores // 2)


def cpu_is_shared() -> bool:
    """True when other processes keep the CPU busy while our forward passes run, so our threads wait for cores.

    Measured on Linux during our own passes (``CpuPassWatch``): the CPU time our CPUs (the whole machine, or
    the cores this process is pinned to) spent busy less this process's own, summed over ``SHARED_CHECK_S`` of
    passes, then decided again: shared above ``0.5 * max(1, cores // 2)`` of our cores' worth of other work.
    Beside two busy loops on 2 cores that reads 1.0-1.3 cores. Two things this avoids (issue 30): our own threads
    are not counted, so running fewer of them on shared cores (``TorchRuntime``) cannot flip the verdict back, as
    the 1-minute load average would (two busy loops and our one thread make a load of 3, the boundary); and work
    that runs only between our passes, such as the load generator of a server benchmark on loopback waiting for
    its answers, does not count, since it does not take cores from a pass. Until passes have been measured, and
    where ``/proc/stat`` does not exist, the load average decides: shared above ``cores + max(1, cores // 2)``.
    False where neither exists (Windows).
    """
    with _watch.lock:
        if _watch.shared is not None:
            return _watch.shared
    return _load_says_shared()


def default_batch_tokens(device: str, shared: bool | None = None) -> int:
    """Padded tokens per forward pass when none is given, decided per call (``shared`` None: ``cpu_is_shared()``).

    GPUs want big batches (16,384). On a CPU it depends on who else uses the cores (issue 30,
    benchmarks/cpu_peers.py). Alone, small passes stay in cache: 1,024 ran all-MiniLM-L6-v2 1.2x faster than
    16,384 and 1.24x faster than 4,096 on a quiet 2-core machine. Shared, every forward pass is a series of
    parallel regions that end only when each of our threads has had its turn on a core, so the number of
    passes costs the most: with 1,024, 512 chunks of 150-250 words ran at 0.45x sentence-transformers'
    batches of 32, hence 8,192 there (about 32 such chunks per pass, still sorted by tokens).
    """
    if device != "cpu":
        return ACCELERATOR_BATCH_TOKENS
    if shared is None:
        shared = cpu_is_shared()
    return CPU_SHARED_BATCH_TOKENS if shared else CPU_BATCH_TOKENS


def plan_token_batches(lengths: Sequence[int], max_batch_tokens: int, max_batch_size: int, *,
                       keep_order: bool = False) -> list[Batch]:
    """Sort by length (longest first) and cut batches whose padded size stays within ``max_batch_tokens``;
    ``keep_order``: cut the texts in the order given instead (first come, first served).

    A text longer than the budget gets a batch of its own. Returns batches of original indices.
    """
    order = range(len(lengths)) if keep_order else sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[Batch] = []
    current: Batch = []
    width = 0
    for i in order:
        longest = max(width, lengths[i], 1)
        if current and ((len(current) + 1) * longest > max_batch_tokens or len(current) >= max_batch_size):
            batches.append(current)
            current = []
        if not current:
            width = 0
        width = max(width, lengths[i], 1)
        current.append(i)
    if current:
        batches.append(current)
    return batches


def pad_batch(ids: Sequence[Sequence[int]], pad_id: int, side: str = "left") -> tuple[np.ndarray, np.ndarray]:
    """``(input_ids, attention_mask)`` as int64 arrays of shape (len(ids), longest), padded on ``side``."""
    width = max(len(x) for x in ids)
    input_ids = np.full((len(ids), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for row, x in enumerate(ids):
        n = len(x)
        cols = slice(width - n, width) if side == "left" else slice(0, n)
        input_ids[row, cols] = x
        mask[row, cols] = 1
    return input_ids, mask


def find_pad_id(tokenizer: Any) -> int:
    """The tokenizer's pad token, else ``<|endoftext|>``, else its end token, else 0."""
    eot = tokenizer.convert_tokens_to_ids(EOT) if EOT in tokenizer.get_vocab() else None
    for cand in (tokenizer.pad_token_id, eot, tokenizer.eos_token_id, 0):
        if cand is not None:
            return int(cand)
    return 0  # pragma: no cover


def missing_eot_id(tokenizer: Any, modes: Sequence[str], name: str) -> int | None:
    """Qwen3 pools at ``<|endoftext|>``: its id when the tokenizer does not append it itself, else None."""
    if "lasttoken" not in modes or EOT not in tokenizer.get_vocab():
        return None
    eot = int(tokenizer.convert_tokens_to_ids(EOT))
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    if ids and ids[-1] == eot:
        return None
    logger.info("%s: the tokenizer does not append %s; appending it", name, EOT)
    return eot


class TokenPipeline:
    """Texts to token ids as the model sees them: lower-cased if the folder asks, truncated to
    ``max_length`` (keeping room for an appended end token). Thread-safe."""

    def __init__(self, tokenizer: Any, max_length: int, *, do_lower_case: bool = False,
                 append_id: int | None = None) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.do_lower_case = do_lower_case
        self.append_id = append_id
        self._lock = threading.Lock()

    def __call__(self, texts: Sequence[str], *, truncate: bool = True) -> list[list[int]]:
        items = [t.lower() for t in texts] if self.do_lower_case else list(texts)
        with self._lock:  # a fast tokenizer's truncation state is not thread-safe
            enc = self.tokenizer(
                items,
                add_special_tokens=True,
                truncation=truncate,
                max_length=self.max_length if truncate else None,
                return_attention_mask=False,
                return_token_type_ids=False,
                verbose=False,
            )
        ids: list[list[int]] = [list(x) for x in enc["input_ids"]]
        if self.append_id is not None:
            ids = [(x[: self.max_length - 1] if truncate else x) + [self.append_id] for x in ids]
        return ids


class TokenMemo:
    """Token ids of texts counted lately, handed over once to the forward pass that embeds them.

    ``qwen-embed serve`` counts every request's tokens (limits, usage, the gatherer's budget) before the
    model thread embeds the same texts; without this the texts were tokenised twice. Only ids that need no
    truncation are kept (so they equal what embedding would compute), at most ``capacity_tokens`` in all,
    oldest dropped first. A text counted twice (the same query from two clients, or twice in one request)
    is kept for two uses: ``take`` hands one use to each place the text stands and forgets what it hands out.
    Thread-safe.
    """

    def __init__(self, capacity_tokens: int = 262_144) -> None:
        self.capacity = capacity_tokens
        self._ids: OrderedDict[str, tuple[list[int], int]] = OrderedDict()  # text -> (ids, uses left)
        self._tokens = 0  # over every use kept
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._ids)

    def put(self, texts: Sequence[str], ids: Sequence[list[int]], max_length: int) -> None:
        with self._lock:
            for text, x in zip(texts, ids, strict=True):
                if len(x) > max_length or len(x) > self.capacity:
                    continue
                kept = self._ids.get(text)
                self._ids[text] = (x, 1) if kept is None else (kept[0], kept[1] + 1)
                self._tokens += len(x)
            while self._tokens > self.capacity:
                _, (old, uses) = self._ids.popitem(last=False)
                self._tokens -= len(old) * uses

    def take(self, texts: Sequence[str]) -> list[list[int] | None]:
        """The kept ids of each text (None where none are kept), one use per place the text stands."""
        out: list[list[int] | None] = []
        with self._lock:
            if not self._ids:
                return [None] * len(texts)
            for text in texts:
                kept = self._ids.get(text)
                if kept is None:
                    out.append(None)
                    continue
                x, uses = kept
                if uses > 1:
                    self._ids[text] = (x, uses - 1)
                else:
                    del self._ids[text]
                self._tokens -= len(x)
                out.append(x)
        return out


__all__ = [
    "ACCELERATOR_BATCH_TOKENS",
    "CPU_BATCH_TOKENS",
    "CPU_SHARED_BATCH_TOKENS",
    "EOT",
    "SHARED_CHECK_S",
    "CpuPassWatch",
    "TokenMemo",
    "TokenPipeline",
    "cpu_is_shared",
    "default_batch_tokens",
    "find_pad_id",
    "missing_eot_id",
    "pad_batch",
    "plan_token_batches",
]
