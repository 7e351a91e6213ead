"""Object tokens: peaks of the heatmap become centres, and distance-biased attention finds near and far objects."""

import torch

from vqa_cli.model.config import HeadConfig
from vqa_cli.model.head import REGISTERS, FusionHead
from vqa_cli.model.objects import NULLS, ObjectTokens, peaks


def config(**overrides) -> HeadConfig:
    base = dict(image_dim=12, text_dim=20, num_answers=7, width=16, heads=2, layers=2, image_layers=1, objects=4, object_layers=1)
    return HeadConfig(**{**base, **overrides})


def test_peaks_are_local_maxima_above_threshold_with_their_offsets():
    heatmap = torch.full((1, 4, 4), -10.0)
    heatmap[0, 1, 2] = 5.0  # an object centre in row 1, column 2
    heatmap[0, 1, 3] = 2.0  # its neighbour: not a local maximum
    heatmap[0, 3, 0] = 3.0  # a second object
    offsets = torch.full((1, 4, 4, 2), 0.5)
    offsets[0, 1, 2] = torch.tensor([0.25, 0.75])
    centres, mask = peaks(heatmap, offsets, k=3)
    assert mask.tolist() == [[True, True, False]]
    torch.testing.assert_close(centres[0, 0], torch.tensor([(2 + 0.25) / 4, (1 + 0.75) / 4]))
    torch.testing.assert_close(centres[0, 1], torch.tensor([(0 + 0.5) / 4, (3 + 0.5) / 4]))


def test_an_image_with_no_objects_still_answers():
    head = FusionHead(config()).eval()
    with torch.no_grad():
        head.objects.finder.net[-1].bias.fill_(-20.0)  # nothing above threshold anywhere
        image = head.encode_image(torch.randn(2, 16, 12), grid=(4, 4))
        assert not image.objects.found.any() and image.objects.mask[:, 4:].all()  # only the null tokens remain
        out = head(head.encode_text(torch.randn(2, 5, 20)), torch.ones(2, 5, dtype=torch.bool), image, torch.tensor([0, 1]))
    assert torch.isfinite(out.logits).all()


def test_given_centres_replace_detection_and_empty_slots_do_not_change_answers():
    head = FusionHead(config()).eval()
    features = torch.randn(1, 16, 12)
    centres = torch.tensor([[[0.2, 0.3], [0.7, 0.8], [0.5, 0.5], [0.1, 0.9]]])
    two = torch.tensor([[True, True, False, False]])
    text, mask = head.encode_text(torch.randn(1, 5, 20)), torch.ones(1, 5, dtype=torch.bool)
    with torch.no_grad():
        a = head.encode_image(features, (4, 4), centres, two)
        moved = centres.clone()
        moved[0, 2:] = torch.tensor([[0.9, 0.1], [0.3, 0.3]])  # move the empty slots only
        b = head.encode_image(features, (4, 4), moved, two)
        torch.testing.assert_close(head(text, mask, a, None).logits, head(text, mask, b, None).logits)
        assert a.tokens.shape == (1, 16 + REGISTERS, 16)  # grid tokens and registers
        assert a.objects.tokens.shape == (1, 4 + NULLS, 16) and a.objects.found[0].tolist() == [True, True, False, False]


def test_distance_bias_starts_near_for_even_heads_and_far_for_odd_heads_and_skips_self():
    tokens = ObjectTokens(config())
    centres = torch.tensor([[[0.1, 0.1], [0.2, 0.1], [0.9, 0.9]]])
    bias = tokens.distance_bias(centres, torch.ones(1, 3, dtype=torch.bool))  # (1, H, 3, 3)
    assert bias[0, 0, 0].argmax() == 1  # near head, from object 0: its nearest other object
    assert bias[0, 1, 0].argmax() == 2  # far head: its furthest
    assert (bias[0, :, 0, 0] < bias[0, :, 0, 1:].max(-1).values).all()  # itself last, whichever the preference
    empty = tokens.distance_bias(centres, torch.tensor([[True, True, False]]))
    assert (empty[0, :, :, 2] < -1000).all()  # an empty slot is never attended
