"""What passes between the head's parts: ImageEmbeds rows follow their questions, clones can take gradients,
grid_columns finds the grid, and the looks a fusion takes say which keys are grid cells and objects."""

import pytest
import torch

from vqa_cli.model.config import HeadConfig
from vqa_cli.model.embeds import HeadOutput, ImageEmbeds, Look
from vqa_cli.model.head import REGISTERS, FusionHead

PREFIX, GRID, K = 1, (4, 3), 2  # one CLS-like token before a 4 x 3 grid; two object slots


def make_head(fusion: str = "cross") -> FusionHead:
    torch.manual_seed(0)
    cfg = HeadConfig(image_dim=12, text_dim=20, num_answers=5, fusion=fusion, width=16, heads=2, layers=1, image_layers=1,
                     objects=K, object_layers=1)
    return FusionHead(cfg).eval()


def encode(head: FusionHead) -> ImageEmbeds:
    """Two images with given object centres: image 0 has both objects, image 1 only the first."""
    features = torch.randn(2, PREFIX + GRID[0] * GRID[1], 12)
    centres = torch.tensor([[[0.2, 0.3], [0.7, 0.8]], [[0.5, 0.5], [0.9, 0.1]]])
    found = torch.tensor([[True, True], [True, False]])
    return head.encode_image(features, GRID, centres, found)


@pytest.fixture
def embeds() -> ImageEmbeds:
    with torch.no_grad():
        return encode(make_head())


def test_encoded_image_shapes(embeds):
    n = PREFIX + GRID[0] * GRID[1]
    assert embeds.tokens.shape == (2, n + REGISTERS, 16)
    assert embeds.grid == GRID and embeds.prefix == PREFIX
    objects = embeds.objects
    assert objects.centres.shape == (2, K, 2) and objects.object_tokens.shape == (2, K, 16)
    assert objects.heatmap.shape == (2, *GRID) and objects.offsets.shape == (2, *GRID, 2)
    assert objects.found.tolist() == [[True, True], [True, False]]


def test_grid_columns_are_the_grid_tokens_after_the_prefix(embeds):
    columns = embeds.grid_columns
    assert (columns.start, columns.stop) == (PREFIX, PREFIX + GRID[0] * GRID[1])
    assert embeds.tokens[:, columns].shape == (2, GRID[0] * GRID[1], 16)


def test_grid_columns_is_empty_without_a_grid():
    embeds = ImageEmbeds(torch.randn(1, 7, 16), None, 3)
    assert embeds.tokens[:, embeds.grid_columns].shape == (1, 0, 16)


def test_select_gives_each_question_its_image_and_its_objects(embeds):
    index = torch.tensor([1, 0, 1])
    picked = embeds.select(index)
    assert picked.tokens.shape == (3, *embeds.tokens.shape[1:])
    assert picked.grid == embeds.grid and picked.prefix == embeds.prefix
    for row, image in enumerate(index.tolist()):
        torch.testing.assert_close(picked.tokens[row], embeds.tokens[image])
        for name in ("tokens", "centres", "mask", "heatmap", "offsets"):
            torch.testing.assert_close(getattr(picked.objects, name)[row], getattr(embeds.objects, name)[image])
    assert picked.objects.found.tolist() == [[True, False], [True, True], [True, False]]


def test_select_without_objects_keeps_none():
    embeds = ImageEmbeds(torch.randn(2, 5, 16), (2, 2), 1)
    picked = embeds.select(torch.tensor([1, 1]))
    assert picked.objects is None
    torch.testing.assert_close(picked.tokens, embeds.tokens[[1, 1]])


def test_clone_of_an_inference_mode_encoding_can_take_gradients():
    head = make_head()
    with torch.inference_mode():
        embeds = encode(head)
    assert embeds.tokens.is_inference()
    with pytest.raises(RuntimeError):
        embeds.tokens.requires_grad_()  # what run/explain.py would hit without clone
    copy = embeds.clone()
    assert copy.grid == embeds.grid and copy.prefix == embeds.prefix
    for a, b in [(copy.tokens, embeds.tokens)] + [(getattr(copy.objects, n), getattr(embeds.objects, n))
                                                   for n in ("tokens", "centres", "mask", "heatmap", "offsets")]:
        assert not a.is_inference()
        assert torch.equal(a, b) and a.data_ptr() != b.data_ptr()
    copy.tokens.requires_grad_()
    copy.tokens.sum().backward()
    assert copy.tokens.grad is not None and copy.tokens.grad.shape == embeds.tokens.shape


def test_head_output_and_looks_say_where_the_grid_and_objects_are():
    head = make_head()
    with torch.no_grad():
        embeds = encode(head)
        text, mask = head.encode_text(torch.randn(3, 5, 20)), torch.ones(3, 5, dtype=torch.bool)
        index = torch.tensor([0, 1, 1])
        quiet = head(text, mask, embeds, index)
        out = head(text, mask, embeds, index, output_attentions=True)
    assert isinstance(quiet, HeadOutput) and quiet.looks == []
    assert out.logits.shape == (3, 5)
    torch.testing.assert_close(out.logits, quiet.logits)  # looking does not change the answer
    grid_looks = [look for look in out.looks if look.grid is not None]
    object_looks = [look for look in out.looks if look.objects is not None]
    assert grid_looks and object_looks
    for look in grid_looks:
        assert isinstance(look, Look)
        Bq, H, T, S = look.weights.shape
        assert (Bq, H, S) == (3, 2, embeds.tokens.shape[1])
        assert look.grid == embeds.grid_columns and look.grid_shape == GRID
        assert look.weights[..., look.grid].shape[-1] == GRID[0] * GRID[1]
    for look in object_looks:
        assert look.objects.stop - look.objects.start == K
        # image 1 has no second object: no question about it may look there
        assert look.weights[1:, ..., look.objects.start + 1].abs().max() < 1e-6


def test_head_output_looks_are_not_shared_between_outputs():
    a, b = HeadOutput(torch.zeros(1, 2)), HeadOutput(torch.zeros(1, 2))
    a.looks.append(Look(torch.zeros(1, 1, 1, 1)))
    assert b.looks == [] and Look(torch.zeros(1, 1, 1, 1)).grid is None
