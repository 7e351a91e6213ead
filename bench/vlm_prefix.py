"""The image encoded once: a vision-language model answering 5 questions about one image, with
the prefix cache against a plain generate per question, on the CPU. BLIP beside it.

    python bench/vlm_prefix.py [--questions 5] [--tokens 8] [--repeats 3] [--tiles 1 5]

This machine cannot reach the Hugging Face hub, so the model has SmolVLM-256M-Instruct's shape
(a SigLIP ViT-B/16 at 512 px, pixel-shuffled by 4 into 64 tokens per view, under a 30-layer,
576-wide Llama with a 49,280-token vocabulary) and random weights. Each answer is made to run
its full --tokens new tokens (the end token is disabled), so both paths do the same work.
`--tiles 1` gives 64 image tokens (one view); `--tiles 5` splits a 1024 px image into 2x2
tiles plus a global view: 320 image tokens.

  reuse   vqa's path: the image and the prompt up to the question prefilled once, each
          question continued from a copy of that KV cache
  plain   what a loop around transformers does: processor + generate for each question

Both give the same tokens (tests/backends/test_generative.py checks that on tiny models).
"""

from __future__ import annotations

import argparse
import copy
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

SMOLVLM_256M_TEXT = dict(vocab_size=49280, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                         num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192, initializer_range=0.02)
SMOLVLM_256M_VISION = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12, initializer_range=0.02)


def engine_of_smolvlm_shape(splitting: bool):
    import torch

    from tests.backends.tiny_vlm import idefics3_parts
    from vqa_cli.backends.base import Generation
    from vqa_cli.backends.generative import VisionLanguageEngine

    model, processor = idefics3_parts(512, 16, 4, SMOLVLM_256M_TEXT, SMOLVLM_256M_VISION, splitting=splitting)
    engine = VisionLanguageEngine(model.eval(), processor, Path("smolvlm-256m-shape"), "SmolVLM-256M shape (random)", "cpu", torch.float32)
    return engine


def timed(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def measure_vlm(tiles: int, questions: list[str], tokens: int, repeats: int) -> dict:
    import torch

    from vqa_cli.backends.base import Generation
    from vqa_cli.io.media import load_media

    engine = engine_of_smolvlm_shape(splitting=tiles > 1)
    engine.configure(Generation(max_tokens=tokens))
    engine.model.generation_config.eos_token_id = None  # every answer runs its full `tokens`
    side = 1024 if tiles > 1 else 512
    image = load_media(str(ROOT / "samples" / "scene_1.png")).resize((side, side))
    image_tokens = engine.inputs(image, "x")["input_ids"].eq(engine.model.config.image_token_id).sum().item()

    forgetful = copy.copy(engine.processor)
    forgetful.image_processor = engine.processor.image_processor.inner  # a plain loop preprocesses the image every time

    def plain():
        for question in questions:
            text = forgetful.apply_chat_template(engine.prompt(question), add_generation_prompt=True, tokenize=False)
            inputs = forgetful(text=[text], images=[[image]], return_tensors="pt")
            with torch.inference_mode():
                engine.model.generate(**inputs, max_new_tokens=tokens, do_sample=False)

    reuse, without, one = [], [], []
    for _ in range(repeats):  # interleaved, so both see the same machine
        reuse.append(timed(lambda: engine.answer(engine.encode_images([image]), questions)))
        without.append(timed(plain))
        one.append(timed(lambda: engine.answer(engine.encode_images([image]), questions[:1])))
    return {"image_tokens": image_tokens, "reuse": statistics.median(reuse), "plain": statistics.median(without),
            "one": statistics.median(one), "runs": (reuse, without)}


def measure_blip(questions: list[str]) -> float:
    """BLIP-base shape, random weights, through vqa's engine: the same questions about one image."""
    import torch

    from pretrained_cpu import build
    from vqa_cli.backends.registry import load_engine
    from vqa_cli.io.media import load_media

    image = load_media(str(ROOT / "samples" / "scene_1.png"))
    with tempfile.TemporaryDirectory() as tmp:
        build("blip", Path(tmp))
        engine = load_engine(tmp, "cpu", torch.float32)
        return timed(lambda: engine.answer(engine.encode_images([image]), questions))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tiles", type=int, nargs="+", default=[1, 5])
    args = parser.parse_args()
    questions = ["what color is the circle?", "how many objects are there?", "is there a red square?",
                 "what shape is on the left?", "is the square larger than the circle?"][: args.questions]
    for tiles in args.tiles:
        m = measure_vlm(tiles, questions, args.tokens, args.repeats)
        print(f"SmolVLM-256M shape, {m['image_tokens']} image tokens, {len(questions)} questions x {args.tokens} tokens: "
              f"reuse {m['reuse']:.2f} s, plain {m['plain']:.2f} s, speed-up {m['plain'] / m['reuse']:.2f}x; "
              f"one question {m['one']:.2f} s (runs: reuse {[round(t, 2) for t in m['runs'][0]]}, plain {[round(t, 2) for t in m['runs'][1]]})")
    print(f"BLIP-base shape, {len(questions)} questions about one image: {measure_blip(questions):.2f} s")
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
