"""Vision-language models (SmolVLM's idefics3, Qwen2-VL) on tiny random checkpoints built here, offline."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from tests.backends.tiny_vlm import build_idefics3, build_qwen2_vl
from vqa_cli.backends.base import Generation
from vqa_cli.backends.registry import detect, entry, load_engine
from vqa_cli.cli import app

QUESTIONS = ["what color is the circle?", "how many objects are there?", "is there a red square?"]
runner = CliRunner()


@pytest.fixture(scope="session", params=["idefics3", "qwen2_vl"])
def vlm(request, tmp_path_factory):
    build = {"idefics3": build_idefics3, "qwen2_vl": build_qwen2_vl}[request.param]
    return build(tmp_path_factory.mktemp("vlm") / request.param)


@pytest.fixture
def picture(scene_png):
    return Image.open(scene_png).convert("RGB")


def reference(engine, image, question: str, max_tokens: int, media: list[dict] | None = None, **settings) -> tuple[list[int], float]:
    """transformers' own greedy generate on the chat template applied to one user message holding
    the image (or the `media` parts, for a list of images) and the question, and the product of the
    generated tokens' probabilities, by hand."""
    images = image if isinstance(image, list) else [image]
    messages = [{"role": "user", "content": [*(media or [{"type": "image"}]), {"type": "text", "text": question}]}]
    text = engine.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = engine.processor(text=[text], images=[images], return_tensors="pt", **settings)
    with torch.inference_mode():
        out = engine.model.generate(**inputs, max_new_tokens=max_tokens, do_sample=False)
        prompt = inputs["input_ids"].shape[1]
        tokens = out[0, prompt:].tolist()
        extra = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask", "mm_token_type_ids")}
        full = {"input_ids": out, "attention_mask": torch.ones_like(out)}
        if "mm_token_type_ids" in inputs:
            full["mm_token_type_ids"] = torch.cat([inputs["mm_token_type_ids"], torch.zeros_like(out[:, prompt:])], 1)
        logits = engine.model(**full, **extra).logits[0].float()  # teacher-forced over prompt + answer
    logprobs = logits.log_softmax(-1)[prompt - 1 : -1].gather(-1, out[0, prompt:, None])[:, 0]
    return tokens, logprobs.sum().exp().item()


def test_the_kind_is_read_from_config_json_and_listed(vlm):
    assert detect(vlm).kind == "vision-language"
    listed = entry("org/tiny-vlm", vlm)
    assert listed["kind"] == "vision-language" and listed["answers"] is None and listed["size_bytes"] > 100_000


def test_with_no_instruction_greedy_answers_and_scores_equal_transformers_generate(vlm, picture):
    engine = load_engine(str(vlm), "cpu")
    engine.configure(Generation(instruction="", max_tokens=6))
    answers = engine.answer(engine.encode_images([picture]), QUESTIONS)
    for question, answer in zip(QUESTIONS, answers):
        tokens, probability = reference(engine, picture, question, 6)
        assert answer.answer == engine.processor.tokenizer.decode(tokens, skip_special_tokens=True).strip()
        assert answer.score == pytest.approx(probability, rel=1e-3)


def test_the_image_is_encoded_once_and_answers_equal_a_plain_generate(vlm, picture):
    """Three questions, one prefill of the image: the same tokens as without the cache."""
    engine = load_engine(str(vlm), "cpu")
    engine.configure(Generation(max_tokens=6))
    calls = []
    tower = next(m for name, m in engine.model.model.named_children() if name in ("vision_model", "visual"))
    tower.register_forward_hook(lambda *_: calls.append(1))
    prefixes = engine.encode_images([picture])
    answers = engine.answer(prefixes, QUESTIONS)
    assert len(calls) == 1 and len(prefixes[0].ids) > 10  # the image and instruction, prefilled once
    for question, answer in zip(QUESTIONS, answers):
        tokens, _ = reference(engine, picture, f"Answer the question using a single word or phrase.\n{question}", 6)
        assert answer.answer == engine.processor.tokenizer.decode(tokens, skip_special_tokens=True).strip()


def test_top_k_gives_distinct_answers_best_first(vlm, picture):
    engine = load_engine(str(vlm), "cpu")
    engine.configure(Generation(max_tokens=4))
    [answer] = engine.answer(engine.encode_images([picture]), QUESTIONS[:1], top_k=3)
    texts = [r["answer"] for r in answer.top_k]
    scores = [r["score"] for r in answer.top_k]
    assert len(texts) == len(set(texts)) >= 2 and scores == sorted(scores, reverse=True)
    assert answer.answer in texts and sum(scores) <= 1.0 + 1e-6


def test_seeded_sampling_repeats_exactly(vlm, scene_png):
    args = ["ask", "-m", str(vlm), str(scene_png), *QUESTIONS, "--temperature", "1.5", "--seed", "7", "--max-tokens", "5"]
    first, second = runner.invoke(app, args), runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert first.stdout == second.stdout


def test_ask_and_batch_with_a_bad_row(vlm, scene_png, tmp_path):
    result = runner.invoke(app, ["ask", "--json", "-m", str(vlm), str(scene_png), *QUESTIONS, "--max-tokens", "4"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["model"]["kind"] == "vision-language" and len(document["answers"]) == 3
    assert all(0 < a["score"] <= 1 for a in document["answers"])
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"image": str(image), "question": q}) + "\n"
                            for image, q in [(scene_png, QUESTIONS[0]), (tmp_path / "missing.png", QUESTIONS[1]), (scene_png, QUESTIONS[2])]))
    result = runner.invoke(app, ["batch", str(rows), "-m", str(vlm), "--max-tokens", "4"])
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.exit_code == 1 and len(records) == 3
    assert records[0]["answer"] is not None and records[1]["error"] and records[2]["answer"] is not None
    alone = runner.invoke(app, ["ask", "--json", "-m", str(vlm), str(scene_png), QUESTIONS[2], "--max-tokens", "4"])
    assert json.loads(alone.stdout)["answers"][0]["answer"] == records[2]["answer"]  # batch company changes nothing


def test_generation_options_are_a_usage_error_for_a_classifier(tiny_bundle, scene_png):
    result = runner.invoke(app, ["ask", "-m", str(tiny_bundle), str(scene_png), "what?", "--instruction", "Be brief."])
    assert result.exit_code == 2 and "cannot take --instruction" in result.stderr and tiny_bundle.name in result.stderr


def test_remote_code_and_pickle_weights_are_refused(vlm, scene_png, tmp_path):
    remote = tmp_path / "remote"
    shutil.copytree(vlm, remote)
    config = json.loads((remote / "config.json").read_text())
    (remote / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoModelForImageTextToText": "modeling.Model"}}))
    result = runner.invoke(app, ["ask", "-m", str(remote), str(scene_png), "what?"])
    assert result.exit_code == 1 and "code" in result.stderr and result.stderr.count("\n") == 1
    pickled = tmp_path / "pickled"
    shutil.copytree(vlm, pickled)
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    result = runner.invoke(app, ["ask", "-m", str(pickled), str(scene_png), "what?"])
    assert result.exit_code == 1 and "pickle" in result.stderr and result.stderr.count("\n") == 1



def test_eval_scores_generated_answers_after_vqa_normalisation(vlm, scene_png, tmp_path):
    """The gold answer of each row is the model's own answer, dressed up ("The RED.") as VQA v2 normalisation undoes."""
    asked = runner.invoke(app, ["ask", "--json", "-m", str(vlm), str(scene_png), *QUESTIONS, "--max-tokens", "3"])
    answers = [a["answer"] for a in json.loads(asked.stdout)["answers"]]
    rows = tmp_path / "gold.jsonl"
    rows.write_text("".join(json.dumps({"image": str(scene_png), "question": q, "answer": f"The {a.upper()}.", "family": "f"}) + "\n"
                            for q, a in zip(QUESTIONS, answers) if a.replace(" ", "").isalnum()))
    rows.write_text(rows.read_text() + json.dumps({"image": str(scene_png), "question": QUESTIONS[0], "answer": "zzz-never", "family": "g"}) + "\n")
    result = runner.invoke(app, ["eval", str(rows), "-m", str(vlm), "--max-tokens", "3", "--json"])
    report = json.loads(result.stdout)
    assert report["families"]["g"]["accuracy"] == 0.0
    if "f" in report["families"]:  # random weights may generate bytes that no normalisation maps back
        assert report["families"]["f"]["accuracy"] == 1.0


def hub_4x_layout(folder, out):
    """The same checkpoint as hub folders from the transformers 4.x era hold it: preprocessor_config.json
    and chat_template.json beside processor_config.json (SmolVLM) or instead of the .jinja file (Qwen2-VL)."""
    shutil.copytree(folder, out)
    template = (out / "chat_template.jinja").read_text()
    (out / "chat_template.jinja").unlink()
    (out / "chat_template.json").write_text(json.dumps({"chat_template": template}))
    processor = out / "processor_config.json"
    if processor.exists():
        settings = json.loads(processor.read_text())
        image = settings.pop("image_processor")
        (out / "preprocessor_config.json").write_text(json.dumps({**image, "processor_class": settings["processor_class"]}))
        processor.write_text(json.dumps(settings))
    return out


def test_both_hub_layouts_load_and_answer_alike(vlm, picture, tmp_path):
    old = hub_4x_layout(vlm, tmp_path / "old-layout")
    answers = []
    for folder in (vlm, old):
        engine = load_engine(str(folder), "cpu")
        engine.configure(Generation(max_tokens=4))
        answers.append([(a.answer, a.score) for a in engine.answer(engine.encode_images([picture]), QUESTIONS)])
    assert answers[0] == answers[1]


def choice_probabilities_by_hand(engine, image, question: str, choices: list[str]) -> dict[str, float]:
    """P(choice tokens, then the end token | prompt), normalised over the set: one full forward pass
    (image and all) per choice, with the model class directly."""
    end = engine.model.generation_config.eos_token_id
    end = end[0] if isinstance(end, list) else end
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    text = engine.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = engine.processor(text=[text], images=[[image]], return_tensors="pt")
    prompt = inputs["input_ids"].shape[1]
    products = {}
    for choice in choices:
        answer = torch.tensor([engine.processor.tokenizer.encode(choice, add_special_tokens=False) + [end]])
        full = {**inputs, "input_ids": torch.cat([inputs["input_ids"], answer], 1),
                "attention_mask": torch.ones(1, prompt + answer.shape[1], dtype=torch.long)}
        if "mm_token_type_ids" in inputs:
            full["mm_token_type_ids"] = torch.cat([inputs["mm_token_type_ids"], torch.zeros_like(answer)], 1)
        with torch.inference_mode():
            logprobs = engine.model(**full).logits[0].double().log_softmax(-1)
        products[choice] = math.exp(sum(logprobs[prompt - 1 + k, t].item() for k, t in enumerate(answer[0].tolist())))
    total = sum(products.values())
    return {c: p / total for c, p in products.items()}


def test_choices_are_scored_as_the_product_of_token_probabilities_then_the_end(vlm, picture):
    engine = load_engine(str(vlm), "cpu")
    engine.configure(Generation(instruction=""))
    choices = ("yes", "no", "red circle", "two")
    prefixes = engine.encode_images([picture])
    answers = engine.answer(prefixes, QUESTIONS, choices=[choices] * len(QUESTIONS))
    for question, answer in zip(QUESTIONS, answers):
        expected = choice_probabilities_by_hand(engine, picture, question, list(choices))
        assert {r["answer"]: r["score"] for r in answer.top_k} == pytest.approx(expected, rel=1e-4, abs=1e-6)
        assert answer.answer == max(expected, key=expected.get)
    shuffled = engine.answer(prefixes, QUESTIONS, choices=[tuple(reversed(choices))] * len(QUESTIONS))
    assert [a.top_k for a in shuffled] == [a.top_k for a in answers]  # the order of the choices changes nothing


def test_a_video_goes_in_whole_as_its_frames_after_their_times(vlm):
    from vqa_cli.io.video import Video
    from vqa_cli.run.stream import answer_image

    frames = [Image.new("RGB", (40, 30), color) for color in ("red", "green", "blue")]
    video = Video("clip.mp4", 4.0, 10.0, 40, 30, [0.0, 1.5, 3.0], frames)
    engine = load_engine(str(vlm), "cpu")
    engine.configure(Generation(instruction="", max_tokens=5))
    answers = answer_image(engine, video, QUESTIONS[:2])
    parts = [p for t in ("0", "1.5", "3") for p in ({"type": "text", "text": f"{t} s:"}, {"type": "image"})]
    untiled = {"do_image_splitting": False} if "idefics3" in str(vlm) else {}
    for question, answer in zip(QUESTIONS, answers):
        tokens, probability = reference(engine, frames, question, 5, parts, **untiled)
        assert answer.answer == engine.processor.tokenizer.decode(tokens, skip_special_tokens=True).strip()
        assert answer.score == pytest.approx(probability, rel=1e-3)
        assert answer.frames is None and answer.segments == [] and answer.video["sampled"] == 3
