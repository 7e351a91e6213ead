"""`vqa batch --engine ray` with 1 and 2 workers against the local engine, on the same rows, side by side.

    python bench/ray_throughput.py [--rows 2000] [--repeats 3] [-m shapes]

Each repeat runs the local engine, then Ray with 1 worker, then Ray with 2 workers, on the
same rows (fresh Shapes scenes, 10 questions each), interleaved so the machine's noise
falls on all three. For Ray it reports rows/s over the whole run (a local Ray instance
started, actors loading the model, answering, shut down) and in the steady state (from
the first record to the last: with several workers the first windows finish together, so
this overstates a short run), the wait for the first record (instance, actors, model
loads, one window), and, apart, what starting and stopping a bare local Ray instance costs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vqa_cli.distributed.ray_actors import RayOptions, _import_ray, run as run_ray  # noqa: E402
from vqa_cli.run.batch import BatchOptions, run as run_local  # noqa: E402
from vqa_cli.shapes.synth import synthesize  # noqa: E402
from vqa_cli.backends.registry import load_engine  # noqa: E402


class Clock:
    """Records seen and when the first and last arrived."""

    def __init__(self):
        self.start, self.first, self.last, self.rows = time.perf_counter(), None, None, 0

    def write(self, record: dict) -> None:
        self.last = time.perf_counter()
        self.first = self.first or self.last
        self.rows += 1

    def rates(self) -> tuple[float, float, float]:
        """(rows/s over the whole run, seconds to the first record, rows/s after the first window's records)."""
        return self.rows / (self.last - self.start), self.first - self.start, (self.rows - 256) / max(self.last - self.first, 1e-9)


def instance_seconds() -> float:
    import os

    ray = _import_ray()
    start = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    ray.shutdown()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("-m", "--model", default="shapes")
    args = parser.parse_args()
    import torch

    engine = load_engine(args.model, "cpu", torch.float32)
    results: dict[str, list[tuple[float, float, float]]] = {"local": [], "ray, 1 worker": [], "ray, 2 workers": []}
    startups = []
    with tempfile.TemporaryDirectory() as tmp:
        synthesize(Path(tmp), args.rows // 10, 10, seed=2469)
        opts = BatchOptions(input=str(Path(tmp) / "questions.csv"))
        for _ in range(args.repeats):
            engine.clear_cache()
            clock = Clock()
            run_local(lambda: engine, opts, clock.write)
            results["local"].append(clock.rates())
            for workers, name in ((1, "ray, 1 worker"), (2, "ray, 2 workers")):
                clock = Clock()
                run_ray(args.model, "cpu", "auto", opts, RayOptions(workers=workers), clock.write, report=lambda line: None)
                results[name].append(clock.rates())
            startups.append(instance_seconds())
    print(f"{args.rows} rows, model {args.model}, median of {args.repeats}")
    base = statistics.median(r[0] for r in results["local"])
    for name, values in results.items():
        whole = statistics.median(v[0] for v in values)
        first = statistics.median(v[1] for v in values)
        steady = statistics.median(v[2] for v in values)
        print(f"{name:15s} {whole:7.1f} rows/s whole run ({whole / base:.2f}x local), first record after {first:5.1f} s, "
              f"{steady:7.1f} rows/s after it")
    print(f"a bare local Ray instance: {statistics.median(startups):.1f} s to start and stop")


if __name__ == "__main__":
    main()
