"""The builtin model on video: per-frame accuracy on compressed frames against the same frames
lossless, the temporal IoU of "yes", the whole-video answer, and what the domain guard flags.

    python bench/video_accuracy.py [--videos 150] [--questions 10] [--seed 1000] [--fps 1]

1. `vqa synth OUT --videos N --sampling uniform` (seed --seed): clips of the moving world,
   H.264 at x264's default quality (crf 23), and their questions with per-frame truth.
2. `vqa eval OUT/videos.jsonl`: the report's video section, as vqa eval prints it.
3. The same questions about the same sampled frames, rendered losslessly as PNG, through
   `vqa eval` as image rows (one row per frame that has a truth): the image accuracy the
   video accuracy is compared with, family by family.
4. The domain guard on every sampled frame: the share flagged outside the domain among the
   frames that obey every rule of the static world (2-6 objects wholly in view, apart,
   clear of the midlines), and among all frames.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def in_static_world(scene) -> bool:
    """Whether a frame's scene is one `vqa synth` could have drawn (the model's training domain)."""
    from vqa_cli.shapes.motion import wholly_in_view
    from vqa_cli.shapes.world import MIDLINE, MIDLINE_CLEARANCE, MIN_GAP

    objects = scene.objects
    if not 2 <= len(objects) <= 6 or not all(wholly_in_view(o) for o in objects):
        return False
    if any(abs(o.x - MIDLINE) <= MIDLINE_CLEARANCE or abs(o.y - MIDLINE) <= MIDLINE_CLEARANCE for o in objects):
        return False
    return all(a.distance(b) >= a.r + b.r + MIN_GAP for i, a in enumerate(objects) for b in objects[i + 1 :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=150)
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--fps", type=float, default=1.0)
    args = parser.parse_args()

    from vqa_cli.backends.registry import load_engine
    from vqa_cli.io.media import load_media
    from vqa_cli.io.video import Sampling
    from vqa_cli.run.evaluate import truth_at, evaluate
    from vqa_cli.run.stream import answer_image
    from vqa_cli.shapes.motion import sample_clip
    from vqa_cli.shapes.render import render
    from vqa_cli.shapes.synth import synthesize_videos

    out = Path(tempfile.mkdtemp(prefix="vqa-video-accuracy-"))
    synthesize_videos(out, args.videos, args.questions, args.seed, sampling="uniform")
    engine = load_engine("shapes", "cpu", "auto")
    sampling = Sampling(fps=args.fps)
    video = evaluate(lambda: engine, str(out / "videos.jsonl"), video=sampling)["video"]

    (out / "frames").mkdir()
    rows, flagged = [], {"in the static world": [0, 0], "all": [0, 0]}
    questions = [json.loads(line) for line in (out / "videos.jsonl").read_text().splitlines()]
    for i in range(args.videos):
        clip = sample_clip(random.Random(f"shapes-video-{args.seed}-{i}"))  # as synthesize_videos drew it
        name = f"videos/clip_{i:06d}.mp4"
        decoded = load_media(str(out / name), video=sampling)
        [answer] = answer_image(engine, decoded, ["is there a red circle?"])
        for t, in_domain in zip(decoded.times, answer.frames_in_domain):
            frame = round(t * clip.fps)
            png = f"frames/clip_{i:06d}_{frame:03d}.png"
            render(clip.scene(frame)).save(out / png)
            for key in ("all", "in the static world") if in_static_world(clip.scene(frame)) else ("all",):
                flagged[key][0] += in_domain is False
                flagged[key][1] += 1
            for row in (q for q in questions if q["image"] == name):
                truth = truth_at(row["truth"], t)
                if truth is not None:
                    rows.append({"image": png, "question": row["question"], "answer": truth, "family": row["family"]})
    (out / "frames.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    images = evaluate(lambda: engine, str(out / "frames.jsonl"))

    print(f"{args.videos} clips, {len(questions)} questions, sampled at {args.fps:g} fps (seed {args.seed}):")
    print("| family | frames | lossless PNG | H.264 | difference | whole-video answer | yes IoU |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for family, v in video["families"].items():
        png = images["families"][family]["accuracy"]
        iou = f"{v['temporal_iou']:.3f}" if "temporal_iou" in v else "-"
        print(f"| {family} | {v['frames']} | {png:.2%} | {v['frame_accuracy']:.2%} | {(v['frame_accuracy'] - png) * 100:+.2f} | "
              f"{v['accuracy']:.2%} | {iou} |")
    print(f"| all | {video['frames']} | {images['accuracy']:.2%} | {video['frame_accuracy']:.2%} | "
          f"{(video['frame_accuracy'] - images['accuracy']) * 100:+.2f} | {video['accuracy']:.2%} | {video['temporal_iou']:.3f} |")
    for key, (n, total) in flagged.items():
        print(f"frames flagged outside the domain, {key}: {n}/{total} ({n / max(total, 1):.2%})")
    print(f"data: {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
