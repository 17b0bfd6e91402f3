"""Ensembles on Dask: thousands of what-if runs, from a laptop to a cluster.

:func:`run_ensemble` expands a scenario's ``ensemble:`` section into members
(:mod:`twin.ensemble_members`), runs them in batches on a Dask cluster (a local one,
one process per core, by default; an existing one with ``scheduler=``) and writes each
batch's results as a Parquet partition as soon as it arrives (:mod:`twin.ensemble_store`).
A member that fails records its traceback and the others go on; the tasks of a worker
that dies are run again by Dask; a second run into the same folder skips the members
already done. A member's result depends on its scenario and seed only, never on the
worker or the number of workers.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import re
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from twin.ensemble_members import Member, expand_members
from twin.ensemble_store import ResultStore, flat_rows
from twin.ensemble_water import MemberTask, preload_network, run_packed_members
from twin.errors import BadInput

if TYPE_CHECKING:
    from distributed import Client

    from twin.scenario import ScenarioSpec

__all__ = ["EnsembleSummary", "run_ensemble", "dask_client"]

CONNECT_TIMEOUT_S = 5.0
FLUSH_ROWS = 500          # members' results written as one Parquet partition ...
FLUSH_S = 2.0             # ... or after this many seconds, whichever comes first
MAX_BATCH = 500           # members per Dask task, at most
MIN_TASK_S = 0.05         # a task runs members for at least this long (once timed)
_ADDRESS = re.compile(r"((tcp|tls|ws|wss|ucx)://)?[^\s/:]+:\d{1,5}|(tcp|tls|ws|wss|ucx)://[^\s/:]+"
                      r"|inproc://\S+")


@dataclass
class EnsembleSummary:
    """What a run of an ensemble did."""

    members: int
    done: int              # done in this run
    failed: int            # failed in this run
    skipped: int           # already done in an earlier run into the same folder
    seconds: float
    workers: int
    scheduler: str
    out: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None,
                timeout_s: float = CONNECT_TIMEOUT_S) -> Iterator["Client"]:
    """A client of the scheduler at ``scheduler``, or of a new local cluster of ``workers``
    processes (default: one per core) with one thread each; closed on exit, Ctrl-C too."""
    from distributed import Client, LocalCluster

    if scheduler is not None:
        if not _ADDRESS.fullmatch(scheduler.strip()):
            raise BadInput(f"--scheduler: expected a Dask scheduler address such as "
                           f"tcp://HOST:PORT, got {scheduler!r}")
        try:
            client = Client(scheduler.strip(), timeout=f"{timeout_s}s", set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise BadInput(f"--scheduler {scheduler}: no Dask scheduler answered within "
                           f"{timeout_s:g} s ({type(exc).__name__}: {exc})") from None
        try:
            client.run(_prepare_worker)
            yield client
        finally:
            client.close()
        return
    import dask

    # Dask's sampling profiler interrupts a task every 10 ms to read its stack: members are
    # Python-heavy (the clock, the layers) and ran 1.7x slower under it
    with dask.config.set({"distributed.worker.profile.enabled": False}):
        cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                               processes=True, dashboard_address=":0",
                               silence_logs=logging.ERROR)
    try:
        client = Client(cluster, set_as_default=False)
        try:
            client.run(_prepare_worker)
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


def _prepare_worker() -> None:
    """Import what members need once per worker, at start-up rather than in the first task."""
    import twin.ensemble_water  # noqa: F401
    import twin.run  # noqa: F401


class _Batcher:
    """The members still to submit, handed out in batches (one Dask task each).

    Without a fixed ``size``, batches shrink as the ensemble goes (guided self-scheduling:
    a share of what is left, per worker), so the workers start on large batches (few
    round trips, the client's work per task is a few milliseconds of a core the workers
    need) and end together on small ones; once members have run, no batch is shorter
    than ``MIN_TASK_S`` of their mean time.
    """

    def __init__(self, members: list[Member], workers: int, size: int | None = None) -> None:
        self._pending = list(reversed(members))
        self.total = len(members)
        self.workers = max(workers, 1)
        self._size = size
        self._min = 1
        self._seconds = self._runs = 0.0

    def __len__(self) -> int:
        return len(self._pending)

    def next(self) -> list[Member]:
        left = len(self._pending)
        size = self._size or min(MAX_BATCH, max(self._min, math.ceil(left / (2 * self.workers))))
        return [self._pending.pop() for _ in range(min(size, left))]

    def observe(self, rows: list[dict[str, Any]]) -> None:
        """Learn the members' mean run time from a landed batch."""
        times = [r["seconds"] for r in rows if math.isfinite(r["seconds"])]
        self._seconds += sum(times)
        self._runs += len(times)
        if self._runs:
            mean = max(self._seconds / self._runs, 1e-6)
            self._min = max(1, min(MAX_BATCH, math.ceil(MIN_TASK_S / mean)))


def _failed_rows(batch: list[Member], exc: BaseException) -> list[dict[str, Any]]:
    """Rows for a batch whose task itself failed (its workers died once too often...)."""
    text = f"{type(exc).__name__}: {exc}"
    return flat_rows(batch, [{"member_id": m.member_id, "status": "failed", "error": text,
                              "seconds": math.nan, "worker_pid": -1, "kpis": {},
                              "elements": None} for m in batch])[0]


def run_ensemble(spec: "ScenarioSpec", out_dir: str | Path, scheduler: str | None = None,
                 workers: int | None = None, client: "Client | None" = None,
                 batch_size: int | None = None, progress: bool = True,
                 on_batch: Callable[[list[dict[str, Any]]], None] | None = None,
                 timeout_s: float = CONNECT_TIMEOUT_S) -> EnsembleSummary:
    """Run every member of ``spec``'s ensemble not yet done in ``out_dir``.

    ``client``: an existing Dask client to use (else one is made from ``scheduler`` /
    ``workers``). ``batch_size``: members per Dask task (default: batches that shrink as
    the ensemble goes, see :class:`_Batcher`). ``on_batch`` is called with each
    batch's rows as it lands.
    """
    t0 = time.perf_counter()
    members = expand_members(spec)
    store = ResultStore(Path(out_dir), spec, members)
    _save_network(spec, store)
    todo = [m for m in members if m.member_id not in store.done_ids]
    per_element = spec.ensemble.per_element
    done = failed = 0
    n_workers = 0
    address = ""
    if todo:
        with (_given(client) if client is not None
              else dask_client(scheduler, workers, timeout_s)) as cl:
            n_workers = max(len(cl.scheduler_info(n_workers=-1).get("workers", {})), 1)
            cl.run(preload_network, spec)     # every worker reads the network now, together
            address = cl.scheduler.address if cl.scheduler is not None else ""
            done, failed = _execute(cl, _Batcher(todo, n_workers, batch_size), per_element,
                                    store, progress, on_batch)
    summary = EnsembleSummary(members=len(members), done=done, failed=failed,
                              skipped=len(members) - len(todo),
                              seconds=round(time.perf_counter() - t0, 3), workers=n_workers,
                              scheduler=address or (scheduler or "local"), out=str(out_dir))
    store.write_summary(summary.as_dict())
    return summary


def _save_network(spec: "ScenarioSpec", store: ResultStore) -> None:
    """The base network's elements (and the demo city's streets) for the report's maps."""
    from twin.ensemble_water import network_elements, worker_networks

    try:
        frames = network_elements(spec)
    except BadInput:            # an unreadable network: its members fail and say why
        return
    if spec.city.demo is not None:
        frames["streets"] = worker_networks().city(spec).streets
    store.write_network(frames)


@contextmanager
def _given(client: "Client") -> Iterator["Client"]:
    yield client          # the caller's client: used, not closed


def _execute(client: "Client", batches: _Batcher, per_element: tuple[str, ...],
             store: ResultStore, progress: bool,
             on_batch: Callable[[list[dict[str, Any]]], None] | None,
             flush_rows: int = FLUSH_ROWS, flush_s: float = FLUSH_S) -> tuple[int, int]:
    """Submit the ``batches`` a few at a time (memory stays bounded); write the results that
    landed as one Parquet partition every ``flush_rows`` members or ``flush_s`` seconds,
    whichever comes first, and whatever landed when the run ends or is interrupted (a
    partition per batch of a few cheap members cost the client more than the members did)."""
    from distributed import as_completed
    from tqdm.auto import tqdm

    total = batches.total
    window = 2 * batches.workers + 2
    pending = batches
    running: dict[Any, list[Member]] = {}
    landed: tuple[list[dict[str, Any]], list[dict[str, Any]]] = ([], [])   # rows, extremes
    last_flush = time.perf_counter()
    done = failed = 0

    def submit(queue: as_completed | None = None) -> Any:
        batch = pending.next()
        tasks = [MemberTask(m.member_id, m.spec, per_element, m.seed, m.element, m.sweep,
                            m.params) for m in batch]
        future = client.submit(run_packed_members, pickle.dumps(tasks, protocol=5),
                               retries=2, pure=False,
                               # unique: never served from another run's result
                               key=f"twin-ensemble-{batch[0].member_id}-{len(batch)}-"
                                   f"{uuid.uuid4().hex[:12]}")
        running[future] = batch
        if queue is not None:
            queue.add(future)
        return future

    def flush() -> None:
        nonlocal last_flush
        rows, extremes = landed
        if rows:
            store.write_batch(rows, extremes)
            rows.clear(), extremes.clear()
        last_flush = time.perf_counter()

    first = []
    while pending and len(first) < window:
        first.append(submit())
    queue = as_completed(first, loop=client.loop)
    bar = tqdm(total=total, unit="run", desc="ensemble", disable=None if progress else True)
    try:
        for future in queue:
            batch = running.pop(future)
            try:
                rows, extremes = future.result()
                pending.observe(rows)
            except Exception as exc:          # KilledWorker after repeated deaths, ...
                rows, extremes = _failed_rows(batch, exc), None
            if pending:                       # keep the workers busy
                submit(queue)
            landed[0].extend(rows)
            if extremes is not None:
                landed[1].append(extremes)
            if on_batch is not None:
                on_batch(rows)
            if len(landed[0]) >= flush_rows or time.perf_counter() - last_flush >= flush_s \
                    or not running:
                flush()
            ok = sum(r["status"] == "done" for r in rows)
            done, failed = done + ok, failed + len(rows) - ok
            bar.update(len(rows))
            bar.set_postfix(done=done, failed=failed, remaining=total - done - failed)
    finally:
        flush()                               # nothing that landed is lost
        bar.close()
        if running:                           # interrupted: leave nothing running
            client.cancel(list(running))
    return done, failed
