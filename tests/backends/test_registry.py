"""-m values become engines: bundle names and folders, pretrained folders; unknown names list the valid ones."""

import pytest
import torch

from vqa_cli.backends.bundle import BundleEngine
from vqa_cli.backends.pretrained import ViltEngine
from vqa_cli.errors import ModelError
from vqa_cli.backends.registry import list_models, load_engine


def test_bundle_folders_and_pretrained_folders_load_their_engine(tiny_bundle, tiny_vilt):
    assert isinstance(load_engine(str(tiny_bundle), "cpu", torch.float32), BundleEngine)
    assert isinstance(load_engine(str(tiny_vilt), "cpu", torch.float32), ViltEngine)


def test_unknown_names_list_the_shipped_bundles():
    with pytest.raises(ModelError, match="unknown model 'nope'; available: shapes"):
        load_engine("nope", "cpu", torch.float32)


def test_a_folder_that_is_no_model_is_refused(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ModelError, match="not a model vqa can run"):
        load_engine(str(tmp_path), "cpu", torch.float32)


def test_shipped_bundles_are_listed_with_their_encoders():
    (shapes,) = [e for e in list_models() if e["name"] == "shapes"]
    assert shapes["image_encoder"] == "resnet (in bundle)" and shapes["answers"] == 26
