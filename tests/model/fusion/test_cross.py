"""cross: the question's tokens read the grid and the objects; bundles from before the choice load as cross."""

import torch

from tests.model.test_head import tiny_head, with_objects
from vqa_cli.model.head import REGISTERS
from vqa_cli.model.objects import NULLS


def test_each_block_looks_at_the_grid_and_the_objects_from_every_question_token():
    head = tiny_head(fusion="cross", objects=2, object_layers=1)
    image = with_objects(head, torch.randn(3, 20, 12), grid=(4, 5))
    text = head.encode_text(torch.randn(5, 6, 20))
    out = head(text, torch.ones(5, 6, dtype=torch.bool), image, torch.tensor([0, 0, 1, 2, 2]), output_attentions=True)
    grid_looks = [look for look in out.looks if look.grid is not None]
    object_looks = [look for look in out.looks if look.objects is not None]
    assert len(grid_looks) == len(object_looks) == 2  # one of each per block
    assert grid_looks[0].weights.shape == (5, 2, 6, 20 + REGISTERS)  # (Bq, H, Tq, Ti + R)
    assert grid_looks[0].grid == slice(0, 20) and grid_looks[0].grid_shape == (4, 5)
    assert object_looks[0].weights.shape == (5, 2, 6, 2 + NULLS)  # (Bq, H, Tq, K + N)
    assert float(object_looks[0].weights.detach()[:2, ..., 1].abs().sum()) == 0.0  # image 0's empty slot gets no attention
