"""The head: the shared image side, then whichever fusion the config names, then the answer head.

The properties every fusion must have are checked for all four here; what is particular to
each is in tests/model/fusion/.
"""

import pytest
import torch

from vqa_cli.model.config import FUSIONS, HeadConfig
from vqa_cli.model.head import REGISTERS, FusionHead

ALL = pytest.mark.parametrize("fusion", list(FUSIONS))


def tiny_head(**overrides) -> FusionHead:
    torch.manual_seed(0)
    cfg = HeadConfig(image_dim=12, text_dim=20, num_answers=7, width=16, heads=2, layers=2, image_layers=1)
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return FusionHead(cfg).eval()


def with_objects(head: FusionHead, features: torch.Tensor, grid=(4, 4)):
    """Encode with two given object centres per image (the second slot empty in image 0)."""
    centres = torch.tensor([[0.2, 0.3], [0.7, 0.8]]).expand(len(features), -1, -1)
    found = torch.ones(len(features), 2, dtype=torch.bool)
    found[0, 1] = False
    return head.encode_image(features, grid, centres, found)


@ALL
def test_shapes_through_the_head(fusion):
    head = tiny_head(fusion=fusion, objects=2, object_layers=1)
    image = with_objects(head, torch.randn(3, 4 * 5, 12), grid=(4, 5))  # (Bi, Ti, Ci)
    assert image.tokens.shape == (3, 20 + REGISTERS, 16)  # grid tokens + registers
    text = head.encode_text(torch.randn(5, 6, 20))
    assert text.shape == (5, 6, 16)
    index = torch.tensor([0, 0, 1, 2, 2])
    out = head(text, torch.ones(5, 6, dtype=torch.bool), image, index, output_attentions=True)
    assert out.logits.shape == (5, 7)
    torch.testing.assert_close(out.logits, head(text, torch.ones(5, 6, dtype=torch.bool), image, index).logits)
    for look in out.looks:  # attention weights: each query's row sums to one
        rows = look.weights.sum(-1)
        torch.testing.assert_close(rows, torch.ones_like(rows))


@ALL
def test_question_padding_does_not_change_the_answer(fusion):
    head = tiny_head(fusion=fusion)
    image = head.encode_image(torch.randn(1, 16, 12), grid=(4, 4))
    text = head.encode_text(torch.randn(1, 4, 20))
    mask = torch.ones(1, 4, dtype=torch.bool)
    padded = torch.cat([text, torch.randn(1, 3, 16)], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(1, 3, dtype=torch.bool)], dim=1)
    index = torch.tensor([0])
    torch.testing.assert_close(head(text, mask, image, index).logits, head(padded, padded_mask, image, index).logits)


@ALL
def test_each_question_sees_only_its_own_image(fusion):
    head = tiny_head(fusion=fusion, objects=2, object_layers=1)
    images = with_objects(head, torch.randn(2, 16, 12))
    text = head.encode_text(torch.randn(2, 5, 20))
    mask = torch.ones(2, 5, dtype=torch.bool)
    together = head(text, mask, images, torch.tensor([0, 1])).logits
    alone = head(text[1:], mask[1:], images.select(torch.tensor([1])), torch.tensor([0])).logits
    torch.testing.assert_close(together[1:], alone)
    other = head(text[1:], mask[1:], images.select(torch.tensor([0])), torch.tensor([0])).logits
    assert not torch.allclose(other, alone)  # and it does see it: another image, another answer


@ALL
def test_every_fusion_parameter_learns_from_the_answer(fusion):
    head = tiny_head(fusion=fusion, objects=2, object_layers=1).train()
    images = with_objects(head, torch.randn(2, 16, 12))
    text = head.encode_text(torch.randn(3, 5, 20))
    head(text, torch.ones(3, 5, dtype=torch.bool), images, torch.tensor([0, 1, 1])).logits.logsumexp(-1).sum().backward()
    silent = [name for name, p in head.fusion.named_parameters() if p.grad is None or not p.grad.any()]
    assert not silent


def test_an_unknown_fusion_is_refused():
    with pytest.raises(ValueError, match="unknown fusion 'mixed'"):
        tiny_head(fusion="mixed")


def test_cls_tokens_before_the_grid_and_grid_free_tokens_get_no_position():
    head = tiny_head(image_layers=0)
    features = torch.randn(2, 1 + 9, 12)  # CLS + 3x3 patches
    with_grid = head.encode_image(features, grid=(3, 3))
    assert with_grid.tokens.shape == (2, 10 + REGISTERS, 16) and with_grid.prefix == 1
    plain = head.image_norm(head.image_proj(features))  # what every token is before positions
    torch.testing.assert_close(with_grid.tokens[:, 0], plain[:, 0])  # CLS: no position added
    assert not torch.allclose(with_grid.tokens[:, 1:10], plain[:, 1:10])  # patches: positions added
    no_grid = head.encode_image(features, grid=None)
    torch.testing.assert_close(no_grid.tokens[:, :10], plain)
