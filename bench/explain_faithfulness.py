"""How often `--explain` points at the object a question is about, on the builtin model.

    python bench/explain_faithfulness.py [--scenes 50] [--seed 4242]

For each generated scene it asks a query_color or query_shape question about a referenced
object and checks that the relevance map's peak, mapped back to pixels, falls inside that
object's bounding box (vqa_cli/shapes/faithfulness.py). Prints the hit rate and the misses.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vqa_cli.store.registry import load_engine  # noqa: E402
from vqa_cli.run.faithfulness import peak_hit_rate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=4242)
    parser.add_argument("--model", default="shapes")
    args = parser.parse_args()
    import torch

    rate, records = peak_hit_rate(load_engine(args.model, "cpu", torch.float32), args.scenes, args.seed)
    for record in records:
        if not record["hit"]:
            print(f"miss: {record['question']} -> {record['answer']}; peak {record['peak']} outside {[round(v) for v in record['bbox']]}")
    print(f"peak inside the referenced object's box: {sum(r['hit'] for r in records)}/{len(records)} = {rate:.0%}")


if __name__ == "__main__":
    main()
