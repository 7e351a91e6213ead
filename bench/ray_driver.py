"""The Ray driver at scale: its peak memory and the time to the first record, as the input grows.

    python bench/ray_driver.py [--rows 100000 1000000] [--seconds 0] [--workers 1]
    PYTHONPATH=OLD_CHECKOUT python bench/ray_driver.py ...     # the same, for another version of vqa

For each size, writes a CSV whose rows all name the same small Shapes image and the same
question (so the model costs little and the driver's own work shows), runs
`vqa batch ROWS --engine ray --workers W -o OUT` with the builtin model, and reports:
  first record   seconds from the start of the process to the first record in OUT
  peak RSS       the driver process's own peak resident memory (VmHWM in /proc), read
                 until it exits; Ray's processes are not counted
  rows/s         over the whole run
With --seconds S the run is stopped after S seconds (the peak is then the peak so far).

Also reports where a small run's start-up goes: starting and stopping a local Ray instance,
and loading the model in a fresh process (torch, transformers, weights), each measured alone.
"""

from __future__ import annotations

import argparse
import csv
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def write_rows(folder: Path, rows: int) -> Path:
    from vqa_cli.shapes.render import render
    from vqa_cli.shapes.world import sample_scene
    import random

    image = folder / "scene.png"
    render(sample_scene(random.Random(1))).save(image)
    path = folder / f"rows-{rows}.csv"
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["image", "question"])
        out.writerows([["scene.png", "how many objects are there?"]] * rows)
    return path


def run(rows_csv: Path, out: Path, workers: int, seconds: float) -> dict:
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "vqa_cli", "batch", str(rows_csv), "--engine", "ray", "--workers", str(workers), "-o", str(out), "-q"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first, peak = None, 0.0
    while process.poll() is None:
        peak = max(peak, peak_rss_mb(process.pid) or 0.0)
        if first is None and out.exists() and out.stat().st_size > 0:
            first = time.perf_counter() - start
        if seconds and time.perf_counter() - start > seconds:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=120)
            break
        time.sleep(0.1)
    elapsed = time.perf_counter() - start
    written = sum(1 for _ in open(out)) if out.exists() else 0
    return {"first": first, "peak": peak, "rate": written / elapsed, "written": written, "seconds": elapsed}


def startup_parts() -> None:
    code_ray = "import time; t=time.perf_counter(); import ray; ray.init(address='local', num_cpus=2, include_dashboard=False, logging_level='ERROR'); ray.shutdown(); print(time.perf_counter()-t)"
    code_model = ("import time; t=time.perf_counter(); from vqa_cli.backends.registry import load_engine; "
                  "load_engine('shapes', 'cpu'); print(time.perf_counter()-t)")
    for name, code in (("start and stop a local Ray instance", code_ray), ("import torch and load the builtin model", code_model)):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
        print(f"  {name}: {float(out.stdout.strip().splitlines()[-1]):.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--seconds", type=float, default=0.0)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        for rows in args.rows:
            rows_csv = write_rows(Path(tmp), rows)
            m = run(rows_csv, Path(tmp) / f"out-{rows}.jsonl", args.workers, args.seconds)
            first = f"{m['first']:.1f} s" if m["first"] is not None else "none"
            print(f"{rows:>9,} rows: first record {first}; driver peak RSS {m['peak']:.0f} MB; "
                  f"{m['written']:,} records in {m['seconds']:.0f} s ({m['rate']:.0f} rows/s)")
    print("start-up parts, each alone:")
    startup_parts()


if __name__ == "__main__":
    main()
