"""hybrid: the pooled question reads the image once per hop, as a single query."""

import torch

from vqa_cli.model.head import REGISTERS
from vqa_cli.model.objects import NULLS

from tests.model.test_head import tiny_head, with_objects


def test_each_hop_reads_grid_and_objects_with_one_query():
    head = tiny_head(fusion="hybrid", layers=3, objects=2, object_layers=1)
    image = with_objects(head, torch.randn(2, 16, 12))
    text = head.encode_text(torch.randn(3, 5, 20))
    out = head(text, torch.ones(3, 5, dtype=torch.bool), image, torch.tensor([0, 1, 1]), output_attentions=True)
    assert len(out.looks) == 2 * 3  # grid and objects, per hop
    assert out.looks[0].weights.shape == (3, 2, 1, 16 + REGISTERS)  # (Bq, H, 1 query, Ti + R)
    assert out.looks[1].weights.shape == (3, 2, 1, 2 + NULLS)  # (Bq, H, 1 query, K + N)
    assert not torch.allclose(out.looks[0].weights, out.looks[2].weights)  # the second hop asks with a refined query
