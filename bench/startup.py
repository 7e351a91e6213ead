"""Start-up cost of `vqa`, measured side by side with the imports it cannot avoid.

    python bench/startup.py [--runs 7]

Pairs, run interleaved so machine noise hits both sides alike:
  1. `vqa --help`                      vs  python -c "import torch"          (target: < 0.25x)
  2. `vqa ask` on a sample, builtin    vs  python -c "import torch, transformers"  (target: <= 1.5x)
Prints the median wall time of each and their ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "HF_HUB_OFFLINE": "1", "VQA_DEVICE": "cpu"})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    vqa = shutil.which("vqa") or str(Path(sys.executable).parent / "vqa")
    commands = {
        "vqa --help": [vqa, "--help"],
        "import torch": [sys.executable, "-c", "import torch"],
        "vqa ask (builtin, cpu)": [vqa, "ask", "samples/scene_1.png", "what shape is the red object?"],
        "import torch, transformers": [sys.executable, "-c", "import torch, transformers"],
    }
    for cmd in commands.values():  # warm the file cache once
        wall(cmd)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, cmd in commands.items():
            times[name].append(wall(cmd))
    median = {name: statistics.median(ts) for name, ts in times.items()}
    for name, value in median.items():
        print(f"{name:<28} median {value:6.3f} s  (runs: {', '.join(f'{t:.2f}' for t in times[name])})")
    help_ratio = median["vqa --help"] / median["import torch"]
    ask_ratio = median["vqa ask (builtin, cpu)"] / median["import torch, transformers"]
    print(f"vqa --help / import torch               = {help_ratio:.3f}  (target < 0.25)")
    print(f"vqa ask / import torch, transformers    = {ask_ratio:.3f}  (target <= 1.5)")


if __name__ == "__main__":
    main()
