"""The bundle format: config.json plus safetensors, saved atomically and loaded exactly."""

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import save_tiny_bundle
from vqa_cli.errors import ModelError
from vqa_cli.model.config import HeadConfig
from vqa_cli.store import bundle as bundles


def answer_logits(loaded, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    model = loaded.model
    pixels = torch.randn(2, 3, 32, 32)
    tokens = loaded.preprocessing.tokenize(loaded.tokenizer, ["what color is the circle?", "is there a red square?"])
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
    loaded = bundles.load(str(tiny_bundle))
    config = bundles.read_config(tiny_bundle)
    assert config["format"] == bundles.FORMAT
    assert HeadConfig.from_dict(config["head"]) == loaded.model.config
    assert config["answers"] == loaded.model.answers and config["head"]["num_answers"] == len(config["answers"])
    head = load_file(tiny_bundle / "head.safetensors")  # exactly the head's weights, nothing else
    expected = loaded.model.head.state_dict()
    assert head.keys() == expected.keys()
    assert all(torch.equal(head[k], expected[k]) for k in head)
    encoder = load_file(tiny_bundle / "image_encoder" / "model.safetensors")  # the trained encoder, in HF format
    assert encoder.keys() == loaded.model.image_encoder.model.state_dict().keys()
    assert not list(tiny_bundle.glob("*.bin")) and not list(tiny_bundle.rglob("*.pt"))  # no pickles


def test_bundles_made_before_object_tokens_still_load_as_grid_heads(tiny_bundle, tmp_path):
    import json
    import shutil

    old = tmp_path / "old"
    shutil.copytree(tiny_bundle, old)
    config = json.loads((old / "config.json").read_text())
    for key in ("objects", "object_layers"):
        config["head"].pop(key)
    (old / "config.json").write_text(json.dumps(config))
    assert bundles.load(str(old)).model.config.objects == 0
    assert torch.equal(answer_logits(bundles.load(str(old))), answer_logits(bundles.load(str(tiny_bundle))))


def test_bundles_made_before_the_fusion_choice_load_as_cross(tiny_bundle, tmp_path):
    """Their config has no head.fusion and their weights say blocks.N.*, not fusion.blocks.N.*."""
    import json
    import shutil

    from safetensors.torch import save_file

    old = tmp_path / "old"
    shutil.copytree(tiny_bundle, old)
    config = json.loads((old / "config.json").read_text())
    config["head"].pop("fusion")
    (old / "config.json").write_text(json.dumps(config))
    state = load_file(old / "head.safetensors")
    assert any(k.startswith("fusion.blocks.") for k in state)
    save_file({k.removeprefix("fusion."): v for k, v in state.items()}, old / "head.safetensors")
    loaded = bundles.load(str(old))
    assert loaded.model.config.fusion == "cross"
    assert torch.equal(answer_logits(loaded), answer_logits(bundles.load(str(tiny_bundle))))


def test_the_shipped_bundle_is_a_cross_fusion_and_says_so():
    config = bundles.read_config(bundles.find("shapes"))
    assert config["kind"] == "cross-attention"
    assert bundles.load("shapes").model.config.fusion == "cross"


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


def test_train_out_never_replaces_a_folder_of_user_files(tmp_path, tiny_bundle):
    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(ModelError, match="not a vqa bundle; refusing"):
        bundles.check_writable(mine)
    (tmp_path / "empty").mkdir()
    bundles.check_writable(tmp_path / "empty")
    bundles.check_writable(tmp_path / "new")
    bundles.check_writable(tiny_bundle)  # a bundle of ours is replaced by retraining
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelError, match="is a file"):
        bundles.check_writable(tmp_path / "file")


@pytest.mark.parametrize("damage", ["config list", "config missing key", "empty weights", "foreign weights", "bad domain"])
def test_a_corrupt_bundle_is_one_model_error(tiny_bundle, tmp_path, damage):
    import json
    import shutil

    bundle = tmp_path / "b"
    shutil.copytree(tiny_bundle, bundle)
    config = json.loads((bundle / "config.json").read_text())
    if damage == "config list":
        (bundle / "config.json").write_text("[1, 2]")
    elif damage == "config missing key":
        del config["head"]
        (bundle / "config.json").write_text(json.dumps(config))
    elif damage == "empty weights":
        (bundle / "head.safetensors").write_bytes(b"")
    elif damage == "foreign weights":
        (bundle / "head.safetensors").write_bytes(b"\x80\x04K\x01.")  # a pickle
    else:
        config["domain"] = {"image_threshold": 1.0}
        (bundle / "config.json").write_text(json.dumps(config))
        (bundle / "domain.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelError) as error:
        bundles.load(str(bundle))
    assert "\n" not in str(error.value)
