"""Building the model to train: frozen pretrained image encoders, --init from a bundle, preprocessing."""

import torch
from safetensors.torch import load_file

from tests.train.test_loop import options
from vqa_cli.store import bundle as bundles
from vqa_cli.train.loop import train


def test_head_on_frozen_pretrained_clip_features(shapes_data, tiny_text_folder, tiny_clip_folder, tmp_path):
    out = tmp_path / "clip-head"
    train(options(shapes_data, out, tiny_text_folder, image_encoder=str(tiny_clip_folder), epochs=1))
    config = bundles.read_config(out)
    assert config["image_encoder"]["source"] == str(tiny_clip_folder)  # referenced, not copied
    assert not (out / "image_encoder").exists()
    assert config["preprocessing"]["image_size"] == 32
    loaded = bundles.load(str(out))
    frozen = load_file(out / "head.safetensors")
    assert all(not k.startswith("image_encoder") for k in frozen)
    assert loaded.model.image_encoder.width == 32


def test_init_starts_from_a_bundles_weights(shapes_data, tiny_text_folder, tmp_path):
    first = tmp_path / "first"
    train(options(shapes_data, first, tiny_text_folder, epochs=1))
    again = tmp_path / "again"
    train(options(shapes_data, again, tiny_text_folder, epochs=1, lr=0.0, seed=5, init=str(first)))
    a, b = load_file(first / "head.safetensors"), load_file(again / "head.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)  # lr 0: the head is exactly where --init put it


def test_pretrained_image_encoders_bring_their_own_preprocessing(tiny_clip_folder):
    from vqa_cli.train.build import preprocessing
    from vqa_cli.train.options import TrainOptions

    pre = preprocessing(TrainOptions(data="x.csv", out="b", image_encoder=str(tiny_clip_folder)))
    assert pre.image_size == 32 and pre.mean != (0.485, 0.456, 0.406)
