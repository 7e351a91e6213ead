"""Relevance maps: on the grid, in [0, 1], and object-token relevance lands on the object's cell."""

import pytest
import torch

from vqa_cli.model.config import HeadConfig
from vqa_cli.model.head import FusionHead
from vqa_cli.model.explain import relevance_maps, splat


class HeadOnly(torch.nn.Module):
    """The part of VQAModel that relevance_maps uses."""

    def __init__(self, head):
        super().__init__()
        self.head = head
        self.config = head.cfg

    def answer(self, text, mask, image, image_index=None, output_attentions=False):
        return self.head(text, mask, image, image_index, output_attentions)


@pytest.mark.parametrize("fusion", ["cross", "early", "hybrid"])
def test_maps_are_on_the_grid_and_peak_at_one(fusion):
    torch.manual_seed(0)
    cfg = HeadConfig(image_dim=12, text_dim=20, num_answers=5, fusion=fusion, width=16, heads=2, layers=2, image_layers=1)
    head = FusionHead(cfg).eval()
    image = head.encode_image(torch.randn(2, 16, 12), (4, 4))
    text, mask = head.encode_text(torch.randn(3, 5, 20)), torch.ones(3, 5, dtype=torch.bool)
    maps = relevance_maps(HeadOnly(head), text, mask, image, torch.tensor([0, 1, 1]), torch.tensor([0, 1, 2]))
    assert maps.shape == (3, 4, 4) and maps.min() >= 0
    torch.testing.assert_close(maps.flatten(1).max(1).values, torch.ones(3))


def test_padding_tokens_add_nothing_to_the_map():
    torch.manual_seed(0)
    head = FusionHead(HeadConfig(image_dim=12, text_dim=20, num_answers=5, width=16, heads=2, layers=2, image_layers=1)).eval()
    image = head.encode_image(torch.randn(1, 16, 12), (4, 4))
    text = head.encode_text(torch.randn(1, 4, 20))
    padded = torch.cat([text, torch.randn(1, 3, 16)], dim=1)
    mask = torch.tensor([[True] * 4 + [False] * 3])
    index, answer = torch.tensor([0]), torch.tensor([2])
    short = relevance_maps(HeadOnly(head), text, mask[:, :4], image, index, answer)
    torch.testing.assert_close(relevance_maps(HeadOnly(head), padded, mask, image, index, answer), short)


def test_late_fusion_has_no_map_and_says_so_in_one_line():
    from vqa_cli.errors import ModelError

    head = FusionHead(HeadConfig(image_dim=12, text_dim=20, num_answers=5, fusion="late", width=16, heads=2, layers=1)).eval()
    image = head.encode_image(torch.randn(1, 16, 12), (4, 4))
    text, mask = head.encode_text(torch.randn(1, 3, 20)), torch.ones(1, 3, dtype=torch.bool)
    with pytest.raises(ModelError, match=r"fusion \(late\) has no attention") as error:
        relevance_maps(HeadOnly(head), text, mask, image, torch.tensor([0]), torch.tensor([1]))
    assert "\n" not in str(error.value)


def test_object_relevance_lands_on_the_cell_that_looks_nearest_its_centre():
    grid = torch.zeros(1, 4, 4)
    splat(grid, torch.tensor([[2.0, 0.5]]), torch.tensor([[[0.9, 0.1], [0.1, 0.9]]]))
    assert grid[0, 0, 3] == 2.0 and grid[0, 3, 0] == 0.5 and grid.sum() == 2.5
    shifted = torch.zeros(1, 4, 4)
    splat(shifted, torch.tensor([[1.0]]), torch.tensor([[[0.40, 0.40]]]), offset=(-0.2, 0.0))  # cells look 0.2 left
    assert shifted[0, 1, 2] == 1.0  # x 0.40 is seen by the cell centred at 0.625 - 0.2 = 0.425


@pytest.mark.parametrize("fusion", ["cross", "hybrid"])
def test_objects_add_to_the_map_of_heads_that_read_them(fusion, monkeypatch):
    import vqa_cli.model.explain as explain

    torch.manual_seed(0)
    cfg = HeadConfig(image_dim=12, text_dim=20, num_answers=5, fusion=fusion, width=16, heads=2, layers=1, image_layers=0,
                     objects=2, object_layers=0)
    head = FusionHead(cfg).eval()
    assert type(head.fusion).__name__ == f"{fusion.title()}Fusion"
    image = head.encode_image(torch.randn(1, 16, 12), (4, 4), torch.tensor([[[0.9, 0.1], [0.1, 0.9]]]), torch.tensor([[True, False]]))
    text = head.encode_text(torch.randn(1, 3, 20)).expand(5, -1, -1)  # one question, explained for each of the 5 answers
    mask = torch.ones(5, 3, dtype=torch.bool)
    splats = []
    real_splat = explain.splat
    monkeypatch.setattr(explain, "splat", lambda grid, values, *a, **k: (splats.append(values.clone()), real_splat(grid, values, *a, **k)))
    maps = relevance_maps(HeadOnly(head), text, mask, image, torch.zeros(5, dtype=torch.long), torch.arange(5))
    assert maps.shape == (5, 4, 4) and torch.all(maps.flatten(1).max(1).values == 1.0)
    assert splats and all(v.shape == (5, 2) for v in splats)  # the object tokens' relevance reached the map
    assert sum(v[:, 0].sum() for v in splats) > 0 and all(torch.all(v[:, 1] == 0) for v in splats)  # only the object found
