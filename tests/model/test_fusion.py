import pytest
import torch

from vqa_cli.model.config import HeadConfig
from vqa_cli.model.fusion import Attention, FusionHead


def tiny_head(**overrides) -> FusionHead:
    torch.manual_seed(0)
    cfg = HeadConfig(image_dim=12, text_dim=20, num_answers=7, width=16, heads=2, layers=2, image_layers=1, registers=3)
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return FusionHead(cfg).eval()


def test_shapes_through_the_head():
    head = tiny_head()
    image = head.encode_image(torch.randn(3, 4 * 5, 12), grid=(4, 5))  # (Bi, Ti, Ci)
    assert image.tokens.shape == (3, 20 + 3, 16)  # grid tokens + registers
    text = head.encode_text(torch.randn(5, 6, 20))
    assert text.shape == (5, 6, 16)
    out = head(text, torch.ones(5, 6, dtype=torch.bool), image, torch.tensor([0, 0, 1, 2, 2]), output_attentions=True)
    assert out.logits.shape == (5, 7)
    assert len(out.cross_attentions) == 2
    assert out.cross_attentions[0].shape == (5, 2, 6, 23)  # (Bq, H, Tq, Ti + R)
    torch.testing.assert_close(out.cross_attentions[0].sum(-1), torch.ones(5, 2, 6))


def test_question_padding_does_not_change_the_answer():
    head = tiny_head()
    image = head.encode_image(torch.randn(1, 16, 12), grid=(4, 4))
    text = head.encode_text(torch.randn(1, 4, 20))
    mask = torch.ones(1, 4, dtype=torch.bool)
    padded = torch.cat([text, torch.randn(1, 3, 16)], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(1, 3, dtype=torch.bool)], dim=1)
    index = torch.tensor([0])
    torch.testing.assert_close(head(text, mask, image, index).logits, head(padded, padded_mask, image, index).logits)


def test_each_question_sees_only_its_own_image():
    head = tiny_head()
    images = head.encode_image(torch.randn(2, 16, 12), grid=(4, 4))
    text = head.encode_text(torch.randn(2, 5, 20))
    mask = torch.ones(2, 5, dtype=torch.bool)
    together = head(text, mask, images, torch.tensor([0, 1])).logits
    alone = head(text[1:], mask[1:], images.select(torch.tensor([1])), torch.tensor([0])).logits
    torch.testing.assert_close(together[1:], alone)


@pytest.mark.parametrize("index", [[0, 0, 0], [2, 0, 1], [1, 1, 0]])
def test_packed_cross_attention_equals_attention_per_question(index):
    torch.manual_seed(1)
    attention = Attention(16, heads=4)
    x, context = torch.randn(3, 5, 16), torch.randn(3, 9, 16)
    mask = torch.rand(3, 9) > 0.3
    mask[:, 0] = True
    idx = torch.tensor(index)
    packed_weights, weights = [], []
    packed = attention(x, context, mask=mask, context_index=idx, weights=packed_weights)
    fused = attention(x, context, mask=mask, context_index=idx)  # the fused kernel, no weights kept
    torch.testing.assert_close(fused, packed)
    for row, i in enumerate(index):
        single = attention(x[row : row + 1], context[i : i + 1], mask=mask[i : i + 1], weights=weights)
        torch.testing.assert_close(packed[row], single[0])
        torch.testing.assert_close(packed_weights[0][row], weights[-1][0])
        assert float(weights[-1][0].detach()[..., ~mask[i]].abs().sum()) == 0.0  # masked image tokens get no attention


def test_cls_tokens_before_the_grid_and_grid_free_tokens_get_no_position():
    head = tiny_head(image_layers=0)
    features = torch.randn(2, 1 + 9, 12)  # CLS + 3x3 patches
    with_grid = head.encode_image(features, grid=(3, 3))
    assert with_grid.tokens.shape == (2, 10 + 3, 16) and with_grid.prefix == 1
    plain = head.image_norm(head.image_proj(features))  # what every token is before positions
    torch.testing.assert_close(with_grid.tokens[:, 0], plain[:, 0])  # CLS: no position added
    assert not torch.allclose(with_grid.tokens[:, 1:10], plain[:, 1:10])  # patches: positions added
    no_grid = head.encode_image(features, grid=None)
    torch.testing.assert_close(no_grid.tokens[:, :10], plain)
