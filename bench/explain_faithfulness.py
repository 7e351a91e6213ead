"""How often `--explain` points at the object an answer is about, on the builtin model.

    python bench/explain_faithfulness.py [--scenes 50] [--seed 4242] [--families query_color,query_shape]
    python bench/explain_faithfulness.py --families closest,furthest

For each generated scene it asks one question and checks that the relevance map's peak,
mapped back to pixels, falls inside the right object's bounding box
(vqa_cli.shapes.faithfulness.py): for query_color/query_shape the object the question refers
to, for closest/furthest the object the answer describes. Prints the hit rate and the misses.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vqa_cli.shapes.faithfulness import peak_hit_rate  # noqa: E402
from vqa_cli.backends.registry import load_engine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=4242)
    parser.add_argument("--model", default="shapes")
    parser.add_argument("--families", default="query_color,query_shape")
    args = parser.parse_args()
    import torch

    families = tuple(args.families.split(","))
    rate, records = peak_hit_rate(load_engine(args.model, "cpu", torch.float32), args.scenes, args.seed, families)
    for record in records:
        if not record["hit"]:
            print(f"miss: {record['question']} -> {record['answer']}; peak {record['peak']} outside {[round(v) for v in record['bbox']]}")
    print(f"{args.families}: peak inside the target object's box: {sum(r['hit'] for r in records)}/{len(records)} = {rate:.0%}")
    if any(r["on_reference"] != r["hit"] for r in records):
        on_reference = sum(r["on_reference"] for r in records)
        print(f"{args.families}: peak inside the referenced object's box: {on_reference}/{len(records)} = {on_reference / len(records):.0%}")


if __name__ == "__main__":
    main()
