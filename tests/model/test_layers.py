"""Building blocks: attention that shares each image's K and V among its questions, masked blocks."""

import pytest
import torch

from vqa_cli.model.layers import Attention, Block
from vqa_cli.model.config import HeadConfig


@pytest.mark.parametrize("index", [[0, 0, 0], [2, 0, 1], [1, 1, 0]])
def test_packed_cross_attention_equals_attention_per_question(index):
    torch.manual_seed(1)
    attention = Attention(16, heads=4)
    x, context = torch.randn(3, 5, 16), torch.randn(3, 9, 16)
    mask = torch.rand(3, 9) > 0.3
    mask[:, 0] = True
    idx = torch.tensor(index)
    packed, packed_weights = attention(x, context, mask=mask, context_index=idx, need_weights=True)
    fused, none = attention(x, context, mask=mask, context_index=idx)  # the fused kernel, no weights kept
    assert none is None
    torch.testing.assert_close(fused, packed)
    for row, i in enumerate(index):
        single, weights = attention(x[row : row + 1], context[i : i + 1], mask=mask[i : i + 1], need_weights=True)
        torch.testing.assert_close(packed[row], single[0])
        torch.testing.assert_close(packed_weights[row], weights[0])
        assert float(weights[0].detach()[..., ~mask[i]].abs().sum()) == 0.0  # masked image tokens get no attention


def test_a_block_never_attends_to_padding():
    torch.manual_seed(0)
    block = Block(HeadConfig(image_dim=4, text_dim=4, num_answers=2, width=16, heads=2)).eval()
    x = torch.randn(1, 5, 16)
    mask = torch.tensor([[True, True, True, False, False]])
    changed = x.clone()
    changed[:, 3:] = torch.randn(1, 2, 16)
    torch.testing.assert_close(block(x, mask=mask)[0][:, :3], block(changed, mask=mask)[0][:, :3])
