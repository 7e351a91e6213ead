"""CPU speed of the pretrained backends at full size, with random weights.

    python bench/pretrained_cpu.py [--questions 10]

This machine cannot reach the Hugging Face hub, so it builds BLIP and ViLT with the
architecture of Salesforce/blip-vqa-base (ViT-B/16 at 384 px + BERT-base) and
dandelin/vilt-b32-finetuned-vqa (ViT-B/32 + BERT-base, 3,129 answers) and random weights,
saves them with save_pretrained, loads them through vqa's loader and times `ask` on one
sample image: a first question (image encoded), then N questions about the same image.
Random BLIP weights never emit the end token, so every BLIP answer here is the full 12
tokens: an upper bound, as real answers are 1-3 tokens.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def build(kind: str, folder: Path) -> None:
    import torch
    from transformers import AutoTokenizer

    from vqa_cli.store.hub import resolve

    tokenizer = AutoTokenizer.from_pretrained(resolve("sentence-transformers/all-MiniLM-L6-v2"))  # the BERT uncased vocabulary
    torch.manual_seed(0)
    if kind == "blip":
        from transformers import BlipConfig, BlipForQuestionAnswering, BlipImageProcessor, BlipProcessor

        config = BlipConfig(text_config={"vocab_size": 30524}, vision_config={"image_size": 384, "patch_size": 16})
        BlipForQuestionAnswering(config).save_pretrained(folder)
        BlipProcessor(BlipImageProcessor(size={"height": 384, "width": 384}), tokenizer).save_pretrained(folder)
    else:
        from transformers import ViltConfig, ViltForQuestionAnswering, ViltImageProcessor, ViltProcessor

        labels = {i: f"answer {i}" for i in range(3129)}
        config = ViltConfig(id2label=labels, label2id={v: k for k, v in labels.items()})
        ViltForQuestionAnswering(config).save_pretrained(folder)
        ViltProcessor(ViltImageProcessor(), tokenizer).save_pretrained(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=10)
    args = parser.parse_args()
    import torch

    from vqa_cli.io.media import load_media
    from vqa_cli.backends.registry import load_engine

    image = load_media(str(ROOT / "samples" / "scene_1.png"))
    questions = [f"what is in the picture number {n}?" for n in range(args.questions)]
    for kind in ("vilt", "blip"):
        with tempfile.TemporaryDirectory() as tmp:
            build(kind, Path(tmp))
            start = time.perf_counter()
            engine = load_engine(tmp, "cpu", torch.float32)
            load = time.perf_counter() - start
            params = sum(p.numel() for p in engine.model.parameters()) / 1e6
            start = time.perf_counter()
            state = engine.encode_images([image])
            engine.answer(state, questions[:1])
            first = time.perf_counter() - start
            singles = []
            for q in questions:
                start = time.perf_counter()
                engine.answer(state, [q])
                singles.append(time.perf_counter() - start)
            start = time.perf_counter()
            engine.answer(state, questions, [0] * len(questions))
            batched = (time.perf_counter() - start) / len(questions)
        print(
            f"{kind}: {params:.0f} M parameters; load {load:.1f} s; first question (image encoded) {first:.2f} s; "
            f"further questions, one at a time: median {statistics.median(singles):.2f} s; "
            f"{len(questions)} in one batch: {batched:.2f} s per question"
        )


if __name__ == "__main__":
    main()
