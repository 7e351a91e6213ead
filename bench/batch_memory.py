"""Memory of `vqa batch` over a very long input: resident memory must stay flat.

    python bench/batch_memory.py [--rows 1000000] [--seconds 80] [--every 8]

Writes a CSV of --rows rows over the sample scenes, starts `vqa batch` on it with the
builtin model, and samples its resident memory (VmRSS) and the rows written every --every
seconds for --seconds, then stops it. Flat memory while rows keep coming means the input
is streamed, never held whole.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ["what shape is the red object?", "how many objects are there?", "is there a blue circle?", "what color is the large square?"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=80)
    parser.add_argument("--every", type=int, default=8)
    args = parser.parse_args()
    images = sorted((ROOT / "samples").glob("scene_*.png"))
    with tempfile.TemporaryDirectory() as tmp:
        rows, out = Path(tmp) / "rows.csv", Path(tmp) / "out.jsonl"
        with open(rows, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["image", "question"])
            for n in range(args.rows):
                writer.writerow([str(images[n % len(images)]), QUESTIONS[n % len(QUESTIONS)]])
        print(f"input: {args.rows} rows, {rows.stat().st_size / 1e6:.0f} MB")
        vqa = str(Path(sys.executable).parent / "vqa")
        process = subprocess.Popen([vqa, "batch", str(rows), "-q", "-o", str(out)])
        try:
            for tick in range(1, args.seconds // args.every + 1):
                time.sleep(args.every)
                status = Path(f"/proc/{process.pid}/status").read_text()
                rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
                done = sum(1 for _ in open(out, "rb")) if out.exists() else 0
                print(f"t={tick * args.every:4d} s  rss={rss / 1024:7.1f} MB  rows written={done}")
        finally:
            process.kill()


if __name__ == "__main__":
    main()
