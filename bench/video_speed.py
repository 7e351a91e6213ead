"""Video frames answered per second, from the file to JSON, and the share of that time spent decoding.

    python bench/video_speed.py [--videos 12] [--fps 10] [--repeats 3]

Renders --videos clips of the moving Shapes world (8 s, 256x256, 10 fps, H.264), and a
JSONL naming each clip with 3 questions. Then, with the builtin model loaded once (its
loading is not counted), each repeat:
  batch    runs `vqa batch` on the JSONL in this process, every clip sampled at --fps
           (10: every frame), writing JSON records to /dev/null: frames answered per second
           (each frame is encoded once for its 3 questions) and questions per second
  decode   reads the same clips with the same sampling and nothing else: seconds, and
           their share of the batch's time
Medians over the repeats, measured side by side.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUESTIONS = ["is there a red circle?", "how many objects are there?", "what color is the small square?"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=12)
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from vqa_cli.backends.registry import load_engine
    from vqa_cli.io.records import WRITERS
    from vqa_cli.io.video import Sampling, read_video
    from vqa_cli.run.batch import BatchOptions, run
    from vqa_cli.shapes.synth import synthesize_videos

    folder = Path(tempfile.mkdtemp(prefix="vqa-video-speed-"))
    synthesize_videos(folder, args.videos, 1, seed=3)
    clips = sorted((folder / "videos").glob("*.mp4"))
    rows = folder / "rows.jsonl"
    rows.write_text("".join(json.dumps({"image": str(c), "question": q}) + "\n" for c in clips for q in QUESTIONS))
    sampling = Sampling(fps=args.fps, max_frames=10_000)
    engine = load_engine("shapes", "cpu", "auto")
    frames = sum(read_video(str(c), c.name, sampling).info()["sampled"] for c in clips)

    batch_seconds, decode_seconds = [], []
    for _ in range(args.repeats):
        with open("/dev/null", "w") as sink:
            writer = WRITERS["jsonl"](sink)
            started = time.perf_counter()
            summary = run(lambda: engine, BatchOptions(input=str(rows), video=sampling), writer.write)
            batch_seconds.append(time.perf_counter() - started)
        assert summary.failed == 0 and summary.answered == len(clips) * len(QUESTIONS)
        started = time.perf_counter()
        for clip in clips:
            read_video(str(clip), clip.name, sampling)
        decode_seconds.append(time.perf_counter() - started)

    batch, decode = statistics.median(batch_seconds), statistics.median(decode_seconds)
    print(f"{len(clips)} clips, {frames} frames at {args.fps:g} fps, {len(QUESTIONS)} questions per frame, "
          f"median of {args.repeats}:")
    print("| frames/s answered | questions/s | batch | decoding alone | decoding's share |")
    print("|---:|---:|---:|---:|---:|")
    print(f"| {frames / batch:.1f} | {frames * len(QUESTIONS) / batch:.1f} | {batch:.2f} s | {decode:.2f} s | {decode / batch:.1%} |")


if __name__ == "__main__":
    main()
