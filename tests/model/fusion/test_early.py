"""early: one joint sequence per question, the grid pooled 2x2, the answer read from CLS."""

import torch

from vqa_cli.model.head import REGISTERS
from vqa_cli.model.objects import NULLS

from tests.model.test_head import tiny_head, with_objects
from vqa_cli.model.embeds import ImageEmbeds
from vqa_cli.model.fusion.early import pooled_grid


def test_the_grid_is_pooled_two_by_two_and_other_tokens_kept():
    tokens = torch.arange(2 * (1 + 16 + 3), dtype=torch.float32).view(2, 20, 1).expand(-1, -1, 4)  # CLS, 4x4 grid, 3 registers
    pooled, shape = pooled_grid(ImageEmbeds(tokens, (4, 4), prefix=1))
    assert shape == (2, 2) and pooled.shape == (2, 1 + 4 + 3, 4)
    assert pooled[0, 0, 0] == 0 and pooled[0, 1, 0] == (1 + 2 + 5 + 6) / 4  # CLS kept; cells 0, 1, 4, 5 averaged
    torch.testing.assert_close(pooled[:, -3:], tokens[:, -3:])  # registers kept
    _, odd = pooled_grid(ImageEmbeds(torch.randn(1, 15, 4), (3, 5), prefix=0))
    assert odd == (2, 3)  # a ragged edge is pooled, not dropped


def test_looks_count_only_the_question_side_and_find_grid_and_objects_in_the_joint_sequence():
    head = tiny_head(fusion="early", layers=3, objects=2, object_layers=1)
    image = with_objects(head, torch.randn(2, 16, 12))
    text = head.encode_text(torch.randn(3, 5, 20))
    out = head(text, torch.ones(3, 5, dtype=torch.bool), image, torch.tensor([0, 1, 1]), output_attentions=True)
    assert len(out.looks) == 3  # one per joint layer
    look = out.looks[0]
    S = 1 + 5 + (4 + REGISTERS) + (2 + NULLS)  # CLS, question, pooled grid and registers, objects and nulls
    assert look.weights.shape == (3, 2, S, S)
    assert look.queries == slice(0, 6) and look.grid == slice(6, 10) and look.grid_shape == (2, 2)
    assert look.objects == slice(10 + REGISTERS, 12 + REGISTERS)
