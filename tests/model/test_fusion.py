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
    assert image.shape == (3, 20 + 3, 16)  # grid tokens + registers
    text = head.encode_text(torch.randn(5, 6, 20))
    assert text.shape == (5, 6, 16)
    out = head(text, torch.ones(5, 6, dtype=torch.bool), image, torch.tensor([0, 0, 1, 2, 2]), return_attentions=True)
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
    alone = head(text[1:], mask[1:], images[1:], torch.tensor([0])).logits
    torch.testing.assert_close(together[1:], alone)


@pytest.mark.parametrize("index", [[0, 0, 0], [2, 0, 1], [1, 1, 0]])
def test_packed_cross_attention_equals_attention_per_question(index):
    torch.manual_seed(1)
    attention = Attention(16, heads=4)
    x, context = torch.randn(3, 5, 16), torch.randn(3, 9, 16)
    mask = torch.rand(3, 9) > 0.3
    mask[:, 0] = True
    idx = torch.tensor(index)
    packed, packed_weights = attention(x, context, mask, context_index=idx, return_weights=True)
    for row, i in enumerate(index):
        single, weights = attention(x[row : row + 1], context[i : i + 1], mask[i : i + 1], return_weights=True)
        torch.testing.assert_close(packed[row], single[0])
        torch.testing.assert_close(packed_weights[row], weights[0])
        assert float(weights[0].detach()[..., ~mask[i]].abs().sum()) == 0.0  # masked image tokens get no attention


def test_vit_style_tokens_without_a_grid_skip_positions():
    head = tiny_head()
    out = head.encode_image(torch.randn(2, 1 + 9, 12), grid=(3, 3))  # CLS + 3x3 patches
    assert out.shape == (2, 10 + 3, 16)


def _geometric_case(head):
    features = torch.randn(2, 16, 12)
    text = torch.randn(3, 5, 20)
    mask = torch.ones(3, 5, dtype=torch.bool)
    return head.encode_text(text), mask, head.encode_image(features, (4, 4)), torch.tensor([0, 1, 1])


def _mean_distance_from_focus(head, out):
    """Per (question, head, token): how far block 2 looked from where block 1 looked."""
    from vqa_cli.model.fusion import _look

    torch.manual_seed(1)
    image, index = _geometric_case(head)[2:]
    positions = head.token_positions(image, (4, 4), 0)[index]  # (Bq, Ti, 2)
    focus = _look(out.cross_attentions[0], positions, torch.ones(2)).focus  # (Bq, H, Tq, 2), unsharpened
    d = ((positions[:, None, None, :16] - focus[..., None, :]) ** 2).sum(-1).sqrt()  # (Bq, H, Tq, 16)
    second = out.cross_attentions[1][..., :16]
    return (second * d).sum(-1) / second.sum(-1)


def test_geometric_blocks_start_as_plain_ones_and_follow_their_distance_function():
    plain = tiny_head(layers=3)
    geometric = tiny_head(layers=3, geometric=True)
    geometric.load_state_dict(plain.state_dict(), strict=False)
    torch.manual_seed(1)
    args = _geometric_case(geometric)
    # with flat distance functions and no position offsets, the same function as the plain head
    for block in geometric.blocks[1:]:
        block.distance_table.data.zero_()
        block.inhibition.data.zero_()
    torch.testing.assert_close(plain(*args).logits, geometric(*args, grid=(4, 4)).logits)
    baseline = _mean_distance_from_focus(geometric, geometric(*args, return_attentions=True, grid=(4, 4)))
    knots = torch.linspace(0, 1, geometric.blocks[1].distance_table.shape[1])
    # a falling distance function pulls each head towards where it looked before ("closest")...
    geometric.blocks[1].inhibition.data.zero_()
    geometric.blocks[1].distance_table.data[:] = -0.5 * knots
    near = _mean_distance_from_focus(geometric, geometric(*args, return_attentions=True, grid=(4, 4)))
    # ...and a rising one pushes it away ("furthest")
    geometric.blocks[1].distance_table.data[:] = 0.5 * knots
    far = _mean_distance_from_focus(geometric, geometric(*args, return_attentions=True, grid=(4, 4)))
    assert (near < baseline).float().mean() > 0.9
    assert (far > baseline).float().mean() > 0.9


def test_geometric_prior_looks_near_but_not_at_the_focus_with_head_0_and_far_with_head_1():
    from vqa_cli.model.fusion import FusionBlock, _piecewise_linear

    prior = FusionBlock.DISTANCE_SCALE * FusionBlock._prior(heads=3)
    pixels = torch.tensor([0.0, 10.0, 40.0, 80.0, 200.0])
    g = _piecewise_linear(prior, (pixels / 256 / FusionBlock.MAX_DISTANCE).expand(1, 3, 1, 5))[0, :, 0]  # (H, 5)
    assert g[0, 2] > g[0, 0] and g[0, 2] > g[0, 3] > g[0, 4]  # near, but not the object itself
    assert (g[1].diff() > 0).all()  # far
    assert (g[2] == 0).all()


def test_geometric_positions_move_with_the_learned_offsets():
    head = tiny_head(geometric=True)
    image = head.encode_image(torch.randn(2, 16, 12), grid=(4, 4))  # (2, 16 + 3 registers, D)
    cells = head.token_positions(image, (4, 4), 0)
    assert cells[:, 16:].isnan().all() and not cells[:, :16].isnan().any()  # registers have no position
    torch.testing.assert_close(cells[0, :4, 0], torch.tensor([0.125, 0.375, 0.625, 0.875]))
    head.locate.bias.data[:] = 10.0  # saturates at the largest offset
    moved = head.token_positions(image, (4, 4), 0)
    torch.testing.assert_close(moved[:, :16] - cells[:, :16], torch.full((2, 16, 2), head.MAX_OFFSET))


def test_geometric_gradients_are_finite():
    head = tiny_head(layers=3, geometric=True).train()
    for block in head.blocks[1:]:
        block.distance_table.data.normal_(0, 0.01)
    image = head.encode_image(torch.randn(2, 16, 12), grid=(4, 4))
    out = head(head.encode_text(torch.randn(3, 5, 20)), torch.ones(3, 5, dtype=torch.bool), image, torch.tensor([0, 1, 1]), grid=(4, 4))
    out.logits.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in head.parameters() if p.grad is not None)
    assert head.blocks[1].distance_table.grad.abs().sum() > 0
    assert head.locate.weight.grad.abs().sum() > 0
