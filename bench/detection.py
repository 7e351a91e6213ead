"""How well a bundle's object detector finds the objects of fresh scenes, from pixels alone.

    vqa synth data/shapes-test --images 200 --questions-per-image 10 --seed 2
    python bench/detection.py data/shapes-test [--model shapes]

Compares the centres the head detects (the same ones it answers from) with the ground truth
in scenes.json: the share of objects found (a detection within 6 px, at the image's own
size), false detections, and the mean and 95th-percentile centre error in px.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vqa_cli.io.media import load_media# noqa: E402
from vqa_cli.train.objectives import MATCH_PX  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="a `vqa synth` folder with scenes.json")
    parser.add_argument("--model", default="shapes")
    args = parser.parse_args()
    import torch

    from vqa_cli.backends.bundle import BundleEngine
    from vqa_cli.store import bundle as bundles

    engine = BundleEngine(bundles.load(args.model), "cpu", torch.float32)
    scenes = json.loads((args.data / "scenes.json").read_text())["scenes"]
    errors, found, total, false = [], 0, 0, 0
    for start in range(0, len(scenes), 32):
        chunk = scenes[start : start + 32]
        images = [load_media(str(args.data / s["image"])) for s in chunk]
        embeds = engine.encode_images(images)
        if embeds.objects is None:
            raise SystemExit(f"{args.model} has no object detector")
        for scene, image, centres, present in zip(chunk, images, embeds.objects.centres, embeds.objects.found):
            guesses = centres[present] * torch.tensor(image.size, dtype=torch.float32)  # (K', 2) px
            truth = torch.tensor([[o["x"], o["y"]] for o in scene["objects"]], dtype=torch.float32)  # (K, 2)
            distance = torch.cdist(truth, guesses) if len(guesses) else torch.full((len(truth), 1), float("inf"))
            nearest = distance.min(1).values
            total += len(truth)
            found += int((nearest <= MATCH_PX).sum())
            errors += nearest[nearest <= MATCH_PX].tolist()
            false += int((distance.min(0).values > MATCH_PX).sum()) if len(guesses) else 0
    errors.sort()
    print(f"{len(scenes)} scenes, {total} objects, model {args.model}")
    print(f"objects found (within {MATCH_PX:g} px): {found}/{total} = {found / total:.2%}")
    print(f"false detections: {false}")
    print(f"centre error: mean {sum(errors) / len(errors):.2f} px, 95th percentile {errors[int(len(errors) * 0.95)]:.2f} px")


if __name__ == "__main__":
    main()
