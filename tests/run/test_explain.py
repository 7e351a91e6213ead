"""Relevance maps: on the grid, in [0, 1], and object-token relevance lands on the object's cell."""

import torch

from vqa_cli.model.config import HeadConfig
from vqa_cli.model.fusion import FusionHead
from vqa_cli.run.explain import output_paths, overlay, relevance_maps


class HeadOnly(torch.nn.Module):
    """The part of VQAModel that relevance_maps uses."""

    def __init__(self, head):
        super().__init__()
        self.head = head

    def answer(self, text, mask, image, image_index=None, output_attentions=False):
        return self.head(text, mask, image, image_index, output_attentions)


def test_maps_are_on_the_grid_and_peak_at_one():
    torch.manual_seed(0)
    head = FusionHead(HeadConfig(image_dim=12, text_dim=20, num_answers=5, width=16, heads=2, layers=2, image_layers=1)).eval()
    image = head.encode_image(torch.randn(2, 16, 12), (4, 4))
    text, mask = head.encode_text(torch.randn(3, 5, 20)), torch.ones(3, 5, dtype=torch.bool)
    maps = relevance_maps(HeadOnly(head), text, mask, image, torch.tensor([0, 1, 1]), torch.tensor([0, 1, 2]))
    assert maps.shape == (3, 4, 4) and maps.min() >= 0
    torch.testing.assert_close(maps.flatten(1).max(1).values, torch.ones(3))


def test_relevance_on_an_object_token_lands_on_its_cell():
    torch.manual_seed(0)
    cfg = HeadConfig(image_dim=12, text_dim=20, num_answers=5, width=16, heads=2, layers=1, image_layers=0, objects=2, object_layers=0)
    head = FusionHead(cfg).eval()
    centres = torch.tensor([[[0.9, 0.1], [0.1, 0.9]]])
    image = head.encode_image(torch.randn(1, 16, 12), (4, 4), centres, torch.tensor([[True, False]]))
    # make every question look only at object token 0 (after the 16 grid tokens)
    image.tokens = image.tokens.clone()
    image.mask = torch.zeros_like(image.mask)
    image.mask[0, 16] = True
    text, mask = head.encode_text(torch.randn(1, 3, 20)), torch.ones(1, 3, dtype=torch.bool)
    maps = [relevance_maps(HeadOnly(head), text, mask, image, torch.tensor([0]), torch.tensor([a]))[0] for a in range(5)]
    raised = [m for m in maps if m.max() > 0]  # answers the object's token raised
    assert raised
    for m in raised:
        assert m.flatten().argmax().item() == 0 * 4 + 3  # row 0, column 3: the cell holding (0.9, 0.1)
        assert (m.flatten() > 0).sum() == 1  # nothing else was attended


def test_overlay_keeps_the_image_size_and_paths_number_several_questions(tmp_path):
    from PIL import Image

    image = Image.new("RGB", (40, 30), (200, 200, 200))
    assert overlay(image, [[0.0, 1.0], [0.5, 0.2]], "what? -> red").size == (40, 30)
    assert output_paths(tmp_path / "why.png", 1) == [tmp_path / "why.png"]
    assert output_paths(tmp_path / "why.png", 2) == [tmp_path / "why-1.png", tmp_path / "why-2.png"]
