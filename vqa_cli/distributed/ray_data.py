"""`vqa batch --engine ray`: the same answering path, on a pool of Ray Data actors.

    driver:  the input's rows, exactly as a local run reads them (run/batch.requests_of:
             the same ids, skipped ids, bad rows and resolved paths), in windows of WINDOW
             rows; one dataset item per window
    actors:  each loads the engine once (Answerer.__init__), then answers a window per call
             with run/stream.answer_window, as a local run does: each image encoded once,
             questions fused in batches; bad rows become error records there, so no
             exception leaves an actor and aborts the dataset
    driver:  records back in input order (preserve_order), written and flushed as they come

A killed actor is restarted by Ray and its window retried (Ray Data's actor defaults:
max_restarts=-1, max_task_retries=-1); a window's records reach the driver once, whole.
A run that makes no progress for `stall_timeout` seconds fails with a message instead of
hanging: on a small machine, actors that hold every CPU can starve Ray Data (ray#44687),
so the default pool leaves one CPU free.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

from ..backends.base import Generation, configure
from ..errors import InputError, VQAError
from ..io.media import is_uri, load_media
from ..run.batch import BatchOptions, Row, Summary, finish, requests_of
from ..run.stream import Request, answer_window, decode_window, windows

INSTALL = "--engine ray needs Ray Data: pip install 'vqa-cli[ray]'"


@dataclass
class RayOptions:
    address: str | None = None  # None: start a local instance sized to this machine; "auto": the running cluster
    workers: int | None = None  # actors; None: as many as leave a CPU for reading and writing
    cpus_per_worker: float = 1.0  # also the torch threads of each actor
    gpus_per_worker: float = 0.0
    stall_timeout: float = 600.0  # seconds with no window answered before giving up
    generation: Generation = Generation()  # for engines that generate: --instruction, --max-tokens, ...


class Answerer:
    """One Ray Data actor: the engine, loaded once, answering a window of rows per call."""

    def __init__(self, model: str, device: str | None, dtype: str, opts: BatchOptions, threads: int, generation: Generation):
        import torch

        from ..backends.registry import load_engine

        torch.set_num_threads(threads)
        self.engine = configure(load_engine(model, device, dtype), generation)
        self.opts = opts

    def __call__(self, batch: dict) -> dict:
        return {"records": [self.answer(window) for window in batch["window"]]}

    def answer(self, window: str) -> str:
        """A window of rows (JSON) -> its records (JSON), in order; never raises."""
        requests = [request_from(item) for item in json.loads(window)]
        try:
            images = decode_window(requests, load_media)
            answered = answer_window(self.engine, requests, images, self.opts.top_k or 1, self.opts.batch_size)
        except Exception as e:  # a failure of the model itself: every row of the window is an error record
            message = str(e).splitlines()[0] if str(e) else type(e).__name__
            answered = [(request, None) for request in requests]
            for request, _ in answered:
                request.error = request.error or f"worker error: {message}"
        return json.dumps([finish(request, answer, self.opts) for request, answer in answered])


def request_item(request: Request) -> dict:
    return {"path": request.image, **asdict(request.data)}


def request_from(item: dict) -> Request:
    path = item.pop("path")
    row = Row(**item)
    row.choices = tuple(row.choices) if row.choices else None  # a list, once through JSON
    return Request(path, row.question, row.error, row, row.choices)


def run(
    model: str,
    device: str | None,
    dtype: str,
    opts: BatchOptions,
    ray_opts: RayOptions,
    write: Callable[[dict], None],
    advance: Callable[[int], None] = lambda n: None,
    report: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> Summary:
    """Answer every row of opts.input on Ray, writing each record in input order as its window is done."""
    summary = Summary()
    started = time.perf_counter()
    opts, model = for_workers(opts, model)
    items = [{"window": json.dumps([request_item(r) for r in window])} for window in windows(requests_of(opts), opts.window)]
    if not items:
        return summary
    ray = _import_ray()
    log = Path(tempfile.gettempdir()) / f"vqa-ray-{os.getpid()}.log"
    try:
        with logs_aside(log):
            workers = min(connect(ray, ray_opts, report), len(items))
            actor_opts = replace(opts, skip_ids=frozenset())  # what the actors need: not the ids a resume skips
            dataset = answered_dataset(ray, items, model, device, dtype, actor_opts, ray_opts, workers)
            for row in _with_timeout(dataset.iter_rows(), ray_opts.stall_timeout):
                records = json.loads(row["records"])
                if summary.emit(records, write, opts.fail_fast):
                    break
                advance(len(records))
    except VQAError as e:
        raise VQAError(f"{e} (Ray's own log: {log})") from None
    finally:
        summary.seconds = time.perf_counter() - started
        if ray.is_initialized():
            ray.shutdown()
    log.unlink(missing_ok=True)
    return summary


@contextmanager
def logs_aside(path: Path):
    """Send what Ray's processes write to file descriptor 2 into `path`; vqa's own stderr stays where it was.

    Ray's C++ core logs to fd 2 of the driver and of every process it starts, whatever
    Python's logging says; a CLI's stderr is for its own one-line messages and progress.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 2)
    os.close(log)
    original, sys.stderr = sys.stderr, open(os.dup(saved), "w", buffering=1, encoding="utf-8", errors="replace")
    try:
        yield
    finally:
        sys.stderr.close()
        sys.stderr = original
        os.dup2(saved, 2)
        os.close(saved)


def for_workers(opts: BatchOptions, model: str) -> tuple[BatchOptions, str]:
    """Local paths made absolute, so an actor finds the images and a bundle folder wherever it starts."""
    if not opts.image_root:
        opts = replace(opts, image_root=str((Path.cwd() if opts.input == "-" else Path(opts.input).parent).resolve()))
    elif not is_uri(opts.image_root):
        opts = replace(opts, image_root=str(Path(opts.image_root).resolve()))
    folder = Path(model).expanduser()
    return opts, str(folder.resolve()) if folder.is_dir() else model


def _import_ray():
    """Ray, with its Python loggers and warnings quietened (its C++ logs are set aside by logs_aside)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise InputError(INSTALL) from None
    import logging
    import warnings

    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"ray\..*")
    return ray


def connect(ray, opts: RayOptions, report: Callable[[str], None]) -> int:
    """Join the cluster at opts.address, or start a local instance; returns the pool size."""
    address = opts.address or os.environ.get("RAY_ADDRESS")
    need = opts.cpus_per_worker * (opts.workers or 1)
    settings = dict(include_dashboard=False, logging_level="ERROR", log_to_driver=False, configure_logging=False)
    if address:
        _init(ray, f"cannot join the Ray cluster at {address}", address=address, **settings)
        cpus = ray.cluster_resources().get("CPU", 0)
    else:
        cpus = os.cpu_count() or 1
        if opts.workers and need > cpus - 1:
            # Actors that take every CPU leave none for Ray Data's own tasks, and it stalls. The
            # instance counts one CPU more than the pool needs; the OS shares the real cores.
            report(f"vqa: warning: {opts.workers} workers x {opts.cpus_per_worker:g} CPUs leave no CPU free on this "
                   f"{cpus}-core machine; the cores will be shared")
            cpus = need + 1
        _init(ray, "cannot start a local Ray instance", address="local", num_cpus=cpus, **settings)
    workers = opts.workers or max(1, int((cpus - 1) // opts.cpus_per_worker))
    if opts.workers and address and workers * opts.cpus_per_worker > cpus - 1:
        report(f"vqa: warning: {workers} workers x {opts.cpus_per_worker:g} CPUs take every CPU of the cluster "
               f"({cpus:g}); Ray Data may stall")
    return workers


def _init(ray, failure: str, **settings) -> None:
    try:
        ray.init(**settings)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise VQAError(f"{failure}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


def answered_dataset(ray, items: list[dict], model, device, dtype, opts: BatchOptions, ray_opts: RayOptions, workers: int):
    """The windows as a dataset, mapped by a pool of `workers` Answerer actors, order kept."""
    from ray.data import ActorPoolStrategy, DataContext

    context = DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False  # vqa draws its own, on stderr, only on a terminal
    context.print_on_execution_start = False
    threads = max(1, int(ray_opts.cpus_per_worker))
    return ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        Answerer,
        fn_constructor_kwargs=dict(model=model, device=device, dtype=dtype, opts=opts, threads=threads, generation=ray_opts.generation),
        compute=ActorPoolStrategy(size=workers),
        batch_size=1,
        num_cpus=ray_opts.cpus_per_worker,
        num_gpus=ray_opts.gpus_per_worker or None,
    )


_END = object()


def _with_timeout(rows: Iterator, timeout: float) -> Iterator:
    """The rows of a Ray iterator, failing with a clear message when none arrives for `timeout` seconds."""
    q: queue.Queue = queue.Queue(maxsize=4)

    def pump():
        try:
            for row in rows:
                q.put(row)
            q.put(_END)
        except BaseException as e:  # handed to the caller's thread
            q.put(e)

    threading.Thread(target=pump, name="vqa-ray-results", daemon=True).start()
    while True:
        try:
            item = q.get(timeout=timeout)
        except queue.Empty:
            raise VQAError(
                f"Ray made no progress for {timeout:g} s: the workers may hold every CPU, leaving none for Ray Data "
                "(try fewer --workers or --cpus-per-worker, or a larger --stall-timeout)"
            ) from None
        if item is _END:
            return
        if isinstance(item, BaseException):
            raise VQAError(f"the Ray run failed: {str(item).splitlines()[0] if str(item) else type(item).__name__}") from None
        yield item
