"""How precisely each fusion block's heads find the object a question refers to.

    vqa synth data/shapes-test --images 200 --questions-per-image 10 --seed 2
    python bench/focus_precision.py data/shapes-test [--model shapes] [--families query_color,query_shape] [--limit 120]

For each question, every head's focus is the mean position of its cross-attention over the
grid (and object) tokens, for the question token that lands nearest the referenced object's
centre. Per (block, head) it prints the
mean error vector in pixels (a systematic shift, e.g. from the encoder's receptive field)
and the spread around it: the median and 90th percentile of |error - mean error|. The
spread is what limits "closest"/"furthest": those questions need ~10 px.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vqa_cli.io.media import load_media# noqa: E402
from vqa_cli.store import bundle as bundles  # noqa: E402

RELATION_WORDS = {"closest": " to the ", "furthest": " from the "}
POSITION_WORDS = {"on", "at", "the", "left", "right", "top", "bottom", "or"}


def referenced_object(question: str, family: str, objects: list[dict]) -> dict | None:
    """The one object the question's reference describes, or None when that is ambiguous."""
    words = question.rstrip("?").split(RELATION_WORDS.get(family, " the "))[-1].split()
    words = [w for w in words if w not in POSITION_WORDS and w != "object"]
    matches = [o for o in objects if all(w in (o["size"], o["color"], o["shape"]) for w in words)]
    return matches[0] if len(matches) == 1 else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="a `vqa synth` folder: questions.csv and scenes.json")
    parser.add_argument("--model", default="shapes")
    parser.add_argument("--families", default="query_color,query_shape")
    parser.add_argument("--limit", type=int, default=120)
    args = parser.parse_args()
    import torch


    from vqa_cli.model.layers import grid_centres

    torch.set_num_threads(1)
    bundle = bundles.load(args.model)
    model, pre = bundle.model.eval(), bundle.preprocessing
    scenes = {s["image"]: s["objects"] for s in json.loads((args.data / "scenes.json").read_text())["scenes"]}
    families = args.families.split(",")
    with open(args.data / "questions.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["family"] in families]
    errors: dict[tuple[str, int, int], list] = {}
    for row in rows[: args.limit]:
        target = referenced_object(row["question"], row["family"], scenes[row["image"]])
        if target is None:
            continue
        with torch.no_grad():
            image = model.encode_image(pre.pixels([load_media(str(args.data / row["image"]))]))
            tokens = pre.tokenize(bundle.tokenizer, [row["question"]])
            text = model.encode_text(tokens["input_ids"], tokens["attention_mask"])
            out = model.answer(text, tokens["attention_mask"], image, output_attentions=True)
            h, w = image.grid
            grid_looks = [look.weights for look in out.looks if look.grid is not None]
            object_looks = [look.weights for look in out.looks if look.objects is not None]
            looks = [("grid", grid_looks, image.prefix, grid_centres(h, w, "cpu"))]
            if object_looks:  # the object tokens' own cross-attention, over their detected centres
                looks.append(("objects", object_looks, 0, image.objects.centres[0]))
            for kind, attentions, start, positions in looks:
                for b, attention in enumerate(attentions):  # (1, H, Tq, S)
                    placed = attention[0, :, :, start : start + len(positions)]  # (H, Tq, P)
                    focus = placed @ positions / placed.sum(-1, keepdim=True).clamp(min=1e-9) * 256  # (H, Tq, 2) px
                    error = focus - torch.tensor([target["x"], target["y"]])  # (H, Tq, 2)
                    best = (error**2).sum(-1).argmin(-1)  # (H,) the token nearest the object
                    for head in range(attention.shape[1]):
                        errors.setdefault((kind, b, head), []).append(error[head, best[head]])
    print(f"{len(next(iter(errors.values())))} questions ({args.families}), model {bundle.name}")
    print("attention block head  mean error (x, y) px  spread median  p90")
    for (kind, b, h), values in sorted(errors.items()):
        v = torch.stack(values)
        mean = v.mean(0)
        spread = (v - mean).norm(dim=-1).sort().values
        print(f"{kind:9s} {b:5d} {h:4d}  ({mean[0]:6.1f}, {mean[1]:6.1f})       {spread[len(spread) // 2]:6.1f}  {spread[int(len(spread) * 0.9)]:6.1f}")


if __name__ == "__main__":
    main()
