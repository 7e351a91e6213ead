import torch

from tests.conftest import tiny_image_encoder, tiny_text_encoder
from vqa_cli.model.encoders import ImageEncoder, TextEncoder, _grid_of


def test_cnn_feature_map_becomes_grid_tokens():
    encoder = ImageEncoder(tiny_image_encoder())
    tokens, grid = encoder(torch.randn(2, 3, 32, 32))
    assert grid == (4, 4)  # stride 8
    assert tokens.shape == (2, 16, encoder.width)


def test_text_encoder_gives_token_features():
    encoder = TextEncoder(tiny_text_encoder())
    features = encoder(torch.tensor([[2, 5, 6, 3]]), torch.ones(1, 4, dtype=torch.long))
    assert features.shape == (1, 4, 32)


def test_vit_grid_is_found_after_prefix_tokens():
    assert _grid_of(197) == (14, 14)  # CLS + 14x14
    assert _grid_of(196) == (14, 14)
    assert _grid_of(1 + 4 + 256) == (16, 16)  # CLS + 4 registers + 16x16
