"""`vqa batch --engine ray`: the same answering path, on a pool of Ray actors.

    driver:  the input's rows, read lazily exactly as a local run reads them
             (run/batch.requests_of: the same ids, skipped ids, bad rows and resolved
             paths), in windows of WINDOW rows; at most two windows per actor in flight,
             so the driver's memory does not grow with the input
    actors:  created before the first window is sent, so each loads the engine
             (Answerer.__init__) while the driver reads; then each answers a window per
             call with run/stream.answer_window, as a local run does: each image encoded
             once, questions fused in batches; bad rows become error records there, so no
             exception leaves an actor
    driver:  records back in input order (window k is answered by actor k mod N and
             collected in order), written and flushed as they come

A killed actor is restarted by Ray and its calls retried (max_restarts=-1,
max_task_retries=-1); a window's records reach the driver once, whole. A run that makes
no progress for `stall_timeout` seconds fails with a message instead of hanging.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections import deque
from contextlib import contextmanager
from functools import partial
from itertools import chain, islice
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

from ..backends.base import Generation, configure
from ..errors import InputError, VQAError
from ..io.media import input_folder, is_uri, load_media
from ..run.batch import BatchOptions, Row, Summary, finish, requests_of
from ..run.stream import Request, answer_window, decoded_windows, prepared, windows

INSTALL = "--engine ray needs Ray: pip install 'vqa-cli[ray]'"


@dataclass
class RayOptions:
    address: str | None = None  # None: start a local instance sized to this machine; "auto": the running cluster
    workers: int | None = None  # actors; None: as many as leave a CPU for reading and writing
    cpus_per_worker: float = 1.0  # also the torch threads of each actor
    gpus_per_worker: float = 0.0
    stall_timeout: float = 600.0  # seconds with no window answered before giving up
    generation: Generation = Generation()  # for engines that generate: --instruction, --max-tokens, ...


class Answerer:
    """One Ray actor: the engine, loaded once, answering a window of rows per call."""

    def __init__(self, model: str, device: str | None, dtype: str, opts: BatchOptions, threads: int, generation: Generation):
        import torch

        from ..backends.registry import load_engine

        torch.set_num_threads(threads)
        self.engine = configure(load_engine(model, device, dtype), generation)
        self.opts = opts

    def answer(self, window: str) -> str:
        """A window of rows (JSON) -> its records (JSON), in order; never raises."""
        requests = [request_from(item) for item in json.loads(window)]
        load = partial(load_media, video=self.opts.video)
        try:
            answered = [pair for batch, images in decoded_windows(requests, len(requests), lambda source: prepared(load(source), self.engine.prepare))
                        for pair in answer_window(self.engine, batch, images, self.opts.top_k or 1, self.opts.batch_size)]  # as a local run
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
    source = (json.dumps([request_item(r) for r in window]) for window in windows(requests_of(opts), opts.window))
    first = next(source, None)  # read lazily: the driver never holds the input, only the windows in flight
    if first is None:
        return summary
    ray = _import_ray()
    log = Path(tempfile.gettempdir()) / f"vqa-ray-{os.getpid()}.log"
    try:
        with logs_aside(log):
            workers = connect(ray, ray_opts, report)
            actor_opts = replace(opts, skip_ids=frozenset())  # what the actors need: not the ids a resume skips
            actors = start_actors(ray, model, device, dtype, actor_opts, ray_opts, workers)  # they load while the driver reads
            for records in answered_windows(ray, actors, chain([first], source), ray_opts.stall_timeout):
                records = json.loads(records)
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
        folder = input_folder(opts.input)
        opts = replace(opts, image_root=folder if is_uri(folder) else str(Path(folder).resolve()))
    elif not is_uri(opts.image_root):
        opts = replace(opts, image_root=str(Path(opts.image_root).resolve()))
    folder = Path(model).expanduser()
    return opts, str(folder.resolve()) if folder.is_dir() else model


def _import_ray():
    """Ray, with its Python loggers and warnings quietened (its C++ logs are set aside by logs_aside)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise InputError(INSTALL) from None
    import logging
    import warnings

    logging.getLogger("ray").setLevel(logging.ERROR)
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
        if need > cpus:  # the instance counts the CPUs the pool asks for; the OS shares the real cores
            report(f"vqa: warning: {opts.workers} workers x {opts.cpus_per_worker:g} CPUs are more than this "
                   f"{cpus}-core machine has; the cores will be shared")
            cpus = need
        _init(ray, "cannot start a local Ray instance", address="local", num_cpus=cpus, **settings)
    workers = opts.workers or max(1, int((cpus - 1) // opts.cpus_per_worker))  # by default a CPU is left for the driver
    if address and workers * opts.cpus_per_worker > cpus:
        report(f"vqa: warning: {workers} workers x {opts.cpus_per_worker:g} CPUs are more than the cluster has "
               f"({cpus:g}); the ones that do not fit wait, and the run may stall")
    return workers


def _init(ray, failure: str, **settings) -> None:
    try:
        ray.init(**settings)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise VQAError(f"{failure}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


def start_actors(ray, model, device, dtype, opts: BatchOptions, ray_opts: RayOptions, workers: int) -> list:
    """`workers` Answerer actors, created now so that each loads its model while the driver reads.

    Ray restarts an actor that dies and retries its calls (max_restarts, max_task_retries), so
    a killed actor's windows are answered once all the same."""
    remote = ray.remote(Answerer).options(
        num_cpus=ray_opts.cpus_per_worker, num_gpus=ray_opts.gpus_per_worker, max_restarts=-1, max_task_retries=-1,
    )
    threads = max(1, int(ray_opts.cpus_per_worker))
    return [remote.remote(model, device, dtype, opts, threads, ray_opts.generation) for _ in range(workers)]


def answered_windows(ray, actors: list, windows: Iterator[str], timeout: float, ahead: int = 2) -> Iterator[str]:
    """Each window's records (JSON), in input order. Window k goes to actor k mod N, and at most
    `ahead` windows per actor are in flight, so the driver reads only that far ahead of the answers."""
    from ray.exceptions import GetTimeoutError

    in_flight: deque = deque()
    source = iter(windows)
    for k, window in enumerate(islice(source, ahead * len(actors))):
        in_flight.append(actors[k % len(actors)].answer.remote(window))
    k = len(in_flight)
    while in_flight:
        try:
            records = ray.get(in_flight.popleft(), timeout=timeout)
        except GetTimeoutError:
            raise VQAError(
                f"Ray made no progress for {timeout:g} s: the workers may be waiting for CPUs or GPUs the cluster "
                "does not have (try fewer --workers or --cpus-per-worker, or a larger --stall-timeout)"
            ) from None
        except Exception as e:  # noqa: BLE001 - an actor that cannot start (its model fails to load), or Ray itself
            raise VQAError(f"the Ray run failed: {_first_line(e)}") from None
        window = next(source, None)
        if window is not None:
            in_flight.append(actors[k % len(actors)].answer.remote(window))
            k += 1
        yield records


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
