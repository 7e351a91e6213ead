import pytest
import torch

from tests.conftest import save_tiny_bundle
from vqa_cli.store import bundle as bundles
from vqa_cli.errors import ModelError


def answer_logits(loaded, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    model = loaded.model
    pixels = torch.randn(2, 3, 32, 32)
    tokens = loaded.tokenizer(["what color is the circle?", "is there a red square?"], padding=True, return_tensors="pt")
    with torch.no_grad():
        image = model.encode_image(pixels)
        text = model.encode_text(tokens["input_ids"], tokens["attention_mask"])
        return model.answer(text, tokens["attention_mask"], image, torch.tensor([0, 1])).logits


def test_save_and_load_round_trip_exactly(tiny_bundle, tmp_path):
    first = bundles.load(str(tiny_bundle))
    again = tmp_path / "again"
    bundles.save(first, again)
    second = bundles.load(str(again))
    assert torch.equal(answer_logits(first), answer_logits(second))
    assert second.model.answers == first.model.answers
    assert second.preprocessing == first.preprocessing


def test_bundle_holds_config_and_safetensors(tiny_bundle):
    config = bundles.read_config(tiny_bundle)
    assert config["format"] == bundles.FORMAT
    assert (tiny_bundle / "head.safetensors").is_file()
    assert (tiny_bundle / "image_encoder" / "model.safetensors").is_file()
    assert config["head"]["num_answers"] == len(config["answers"])


def test_different_weights_give_different_answers(tmp_path):
    a = bundles.load(str(save_tiny_bundle(tmp_path / "a", seed=1)))
    b = bundles.load(str(save_tiny_bundle(tmp_path / "b", seed=2)))
    assert not torch.equal(answer_logits(a), answer_logits(b))


def test_unknown_name_lists_the_shipped_bundles():
    with pytest.raises(ModelError) as error:
        bundles.find("no-such-model")
    message = str(error.value)
    assert "no-such-model" in message and "shapes" in message
    assert "\n" not in message


def test_shipped_bundles_are_found_by_name():
    assert bundles.find("shapes") == bundles.available()["shapes"]
