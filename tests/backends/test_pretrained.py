"""Tiny random BLIP and ViLT checkpoints through `ask` and `batch`, with the same schema as bundles."""

import json

import pytest
from typer.testing import CliRunner

from tests.conftest import VQA_ANSWERS
from vqa_cli.cli import app

runner = CliRunner()


def run(*args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input)


@pytest.mark.parametrize("fixture, kind", [("tiny_vilt", "vilt-vqa"), ("tiny_blip", "blip-vqa")])
def test_ask_json_with_pretrained_models(fixture, kind, request, scene_png):
    folder = request.getfixturevalue(fixture)
    result = run("ask", "--json", "--top-k", "3", scene_png, "what color is the circle?", "is there a square?", "-m", folder)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["model"]["kind"] == kind and doc["device"] == "cpu" and doc["dtype"] == "float32"
    assert len(doc["answers"]) == 2
    for answer in doc["answers"]:
        top = answer["top_k"]
        assert 1 <= len(top) <= 3
        assert [r["score"] for r in top] == sorted((r["score"] for r in top), reverse=True)
        assert all(0.0 <= r["score"] <= 1.0 for r in top)
        assert answer["answer"] == top[0]["answer"] and answer["score"] == top[0]["score"]
    if kind == "vilt-vqa":
        assert all(r["answer"] in VQA_ANSWERS for a in doc["answers"] for r in a["top_k"])
        assert len(doc["answers"][0]["top_k"]) == 3


@pytest.mark.parametrize("fixture", ["tiny_vilt", "tiny_blip"])
def test_batch_with_pretrained_models_is_batch_size_invariant(fixture, request, scene_png, tmp_path):
    folder = request.getfixturevalue(fixture)
    rows = [{"image": str(scene_png), "question": q} for q in ("what color is the circle?", "is there a square?", "how many?")]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    outputs = []
    for size in (1, 8):
        result = run("batch", path, "-m", folder, "--batch-size", size)
        assert result.exit_code == 0, result.output
        outputs.append([json.loads(line) for line in result.stdout.splitlines()])
    for a, b in zip(*outputs):
        assert a["answer"] == b["answer"] and a["score"] == pytest.approx(b["score"], abs=1e-4)


def test_blip_score_is_the_sequence_probability(tiny_blip, scene_png):
    import torch

    from vqa_cli.io.media import load_media
    from vqa_cli.backends.registry import load_engine

    engine = load_engine(str(tiny_blip), "cpu", torch.float32)
    state = engine.encode_images([load_media(str(scene_png))])
    (answer,) = engine.answer(state, ["what color is the circle?"])
    # Recompute P(answer) token by token with the stock generate() path.
    model, processor = engine.model, engine.processor
    inputs = processor(images=load_media(str(scene_png)), text="what color is the circle?", return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=12, output_scores=True, return_dict_in_generate=True)
    decoded = processor.tokenizer.decode(out.sequences[0], skip_special_tokens=True).strip()
    assert decoded == answer.answer
    steps = [s.log_softmax(-1)[0, t] for s, t in zip(out.scores, out.sequences[0, 1:])]
    assert answer.score == pytest.approx(float(torch.stack(steps).sum().exp()), rel=1e-3)


def test_pickle_only_checkpoint_is_refused(tiny_vilt, tmp_path, scene_png):
    import shutil

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_vilt, folder)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    result = run("ask", scene_png, "what?", "-m", folder)
    assert result.exit_code == 1
    assert "pickle" in result.stderr and "pytorch_model.bin" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_uncached_hub_model_offline_names_what_is_missing(scene_png):
    result = run("--offline", "ask", scene_png, "what?", "-m", "Salesforce/blip-vqa-base")
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "Salesforce/blip-vqa-base" in line and "vqa pull" in line and "\n" not in line


def test_explain_is_refused_for_vilt(tiny_vilt, scene_png, tmp_path):
    result = run("ask", scene_png, "what?", "-m", tiny_vilt, "--explain", tmp_path / "x.png")
    assert result.exit_code == 1
    assert "--explain" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_cached_models_are_listed(tiny_vilt, tmp_path, monkeypatch):
    # Lay the checkpoint out as the Hugging Face cache does: models--org--name/snapshots/<rev>/
    import shutil

    hub = tmp_path / "hf" / "hub"
    snapshot = hub / "models--acme--tiny-vilt" / "snapshots" / ("a" * 40)
    shutil.copytree(tiny_vilt, snapshot)
    (hub / "models--acme--tiny-vilt" / "refs").mkdir()
    (hub / "models--acme--tiny-vilt" / "refs" / "main").write_text("a" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    result = run("models", "--json")
    assert result.exit_code == 0, result.output
    entries = {e["name"]: e for e in json.loads(result.stdout)}
    assert entries["acme/tiny-vilt"]["kind"] == "vilt-vqa"
    assert entries["acme/tiny-vilt"]["answers"] == len(VQA_ANSWERS)


def test_blip_takes_generation_options_but_no_instruction(tiny_blip, scene_png):
    capped = run("ask", "--json", "-m", str(tiny_blip), str(scene_png), "what is it?", "--max-tokens", "2")
    assert capped.exit_code == 0, capped.output
    answer = json.loads(capped.stdout)["answers"][0]["answer"]
    assert len(answer.split()) <= 2  # two word pieces at most
    sampled = [run("ask", "-m", str(tiny_blip), str(scene_png), "what is it?", "--temperature", "1.5", "--seed", "4").stdout for _ in range(2)]
    assert sampled[0] == sampled[1]
    refused = run("ask", "-m", str(tiny_blip), str(scene_png), "what is it?", "--instruction", "Be brief.")
    assert refused.exit_code == 2 and "takes no --instruction" in refused.stderr


def test_blip_choices_are_the_probability_of_each_choice_then_the_end_by_hand(tiny_blip, scene_png):
    import math

    import torch

    from vqa_cli.backends.registry import load_engine
    from vqa_cli.io.media import load_media

    engine = load_engine(str(tiny_blip), "cpu", torch.float32)
    image, question, choices = load_media(str(scene_png)), "what color is the circle?", ("red", "blue", "light green")
    [answer] = engine.answer(engine.encode_images([image]), [question], choices=[choices])
    model, tokenizer = engine.model, engine.processor.tokenizer
    inputs = engine.processor(images=image, text=question, return_tensors="pt")
    cfg = model.config.text_config
    products = {}
    with torch.no_grad():
        image_embeds = model.vision_model(pixel_values=inputs["pixel_values"])[0]
        question_embeds = model.text_encoder(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                                             encoder_hidden_states=image_embeds)[0]
        for choice in choices:
            ids = [model.decoder_start_token_id, *tokenizer.encode(choice, add_special_tokens=False), cfg.sep_token_id]
            logits = model.text_decoder(input_ids=torch.tensor([ids]), encoder_hidden_states=question_embeds).logits[0]
            products[choice] = math.exp(sum(logits[k].log_softmax(-1)[t].item() for k, t in enumerate(ids[1:])))
    total = sum(products.values())
    assert {r["answer"]: r["score"] for r in answer.top_k} == pytest.approx({c: p / total for c, p in products.items()}, rel=1e-4)


def test_vilt_choices_are_their_sigmoids_divided_by_their_sum(tiny_vilt, scene_png):
    import torch

    from vqa_cli.backends.registry import load_engine
    from vqa_cli.io.media import load_media

    engine = load_engine(str(tiny_vilt), "cpu", torch.float32)
    labels = [engine.model.config.id2label[i] for i in range(3)]
    image = load_media(str(scene_png))
    [answer] = engine.answer(engine.encode_images([image]), ["what?"], choices=[tuple(labels)])
    inputs = engine.processor(images=image, text="what?", return_tensors="pt")
    with torch.no_grad():
        sigmoids = engine.model(**inputs).logits[0, :3].sigmoid()
    expected = {label: (s / sigmoids.sum()).item() for label, s in zip(labels, sigmoids)}
    assert {r["answer"]: r["score"] for r in answer.top_k} == pytest.approx(expected, rel=1e-4)
