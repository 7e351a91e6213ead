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


def test_text_layers_concatenate_the_word_embeddings_with_the_last_layer():
    model = tiny_text_encoder().eval()
    ids, mask = torch.tensor([[2, 5, 6, 3]]), torch.ones(1, 4, dtype=torch.long)
    both = TextEncoder(model, layers=(0, -1))
    assert both.width == 64
    features = both(ids, mask)  # (1, 4, 64)
    hidden = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    torch.testing.assert_close(features[..., :32], hidden[0])  # the embedding layer, per word
    torch.testing.assert_close(features[..., 32:], TextEncoder(model)(ids, mask))  # the last layer
