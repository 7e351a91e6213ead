"""Preprocessing ships with the bundle: images to normalised pixels, questions to token ids."""

import torch
from PIL import Image

from tests.conftest import make_tokenizer
from vqa_cli.model.preprocess import Preprocessing


def test_images_are_resized_and_normalised():
    pre = Preprocessing(image_size=8, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    pixels = pre.pixels([Image.new("RGB", (20, 10), (255, 0, 128))])
    assert pixels.shape == (1, 3, 8, 8) and pixels.dtype == torch.float32
    torch.testing.assert_close(pixels[0, :, 0, 0], torch.tensor([1.0, -1.0, 128 / 255 * 2 - 1]))


def test_questions_are_lowercased_trimmed_and_truncated(tmp_path):
    tokenizer = make_tokenizer(tmp_path / "tok")
    pre = Preprocessing(max_question_tokens=5)
    tokens = pre.tokenize(tokenizer, ["  WHAT Color is the circle?  ", "is there a red square on the left?"])
    assert tokens["input_ids"].shape == (2, 5)  # [CLS] + 3 words + [SEP], padded to the same length
    assert tokens["input_ids"][0].tolist() == tokenizer("what color is", return_tensors="pt")["input_ids"][0].tolist()[:4] + [tokenizer.sep_token_id]
    assert pre.question(" Is THERE a cat? ") == "is there a cat?"


def test_settings_round_trip_through_json():
    pre = Preprocessing(image_size=64, max_question_tokens=12)
    assert Preprocessing.from_dict(pre.to_dict()) == pre
