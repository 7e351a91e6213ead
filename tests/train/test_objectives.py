"""Losses: the detector's targets, the per-object classifiers and detection quality."""

import torch

from vqa_cli.model.objects import Objects
from vqa_cli.train.objectives import ObjectTargets, answer_loss, detection_loss, detection_quality


def objects(heatmap, offsets, centres=None, mask=None):
    Bi = heatmap.shape[0]
    centres = torch.zeros(Bi, 1, 2) if centres is None else centres
    mask = torch.ones(Bi, centres.shape[1], dtype=torch.bool) if mask is None else mask
    return Objects(torch.zeros(Bi, centres.shape[1], 4), centres, mask, heatmap, offsets)


def test_a_perfect_detector_has_a_lower_loss_than_a_blank_one():
    centres, mask = torch.tensor([[[0.30, 0.60]]]), torch.tensor([[True]])  # cell (row 2, col 1) of 4x4
    perfect = torch.full((1, 4, 4), -10.0)
    perfect[0, 2, 1] = 10.0
    offsets = torch.zeros(1, 4, 4, 2)
    offsets[0, 2, 1] = torch.tensor([0.30 * 4 - 1, 0.60 * 4 - 2])
    good = detection_loss(objects(perfect, offsets), centres, mask)
    blank = detection_loss(objects(torch.zeros(1, 4, 4), torch.zeros(1, 4, 4, 2)), centres, mask)
    assert good < 0.01 < blank


def test_object_targets_ignore_empty_slots_and_answers_outside_the_vocabulary():
    heads = ObjectTargets(4, {"color": ["red", "blue"], "shape": ["circle", "square", "triangle"]})
    tokens = torch.randn(2, 3, 4)
    targets = {"color": torch.tensor([[0, 1, -1], [1, -1, -1]]), "shape": torch.tensor([[2, 0, -1], [1, -1, -1]])}
    loss = heads.loss(tokens, targets)
    assert torch.isfinite(loss)
    changed = tokens.clone()
    changed[0, 2], changed[1, 1:] = 5.0, -5.0  # only the empty slots (target -1 everywhere)
    torch.testing.assert_close(heads.loss(changed, targets), loss)
    changed[0, 0] = 5.0  # a slot with targets
    assert not torch.isclose(heads.loss(changed, targets), loss)
    assert answer_loss(torch.randn(3, 5), torch.tensor([1, -1, 4])) > 0


def test_detection_quality_counts_found_false_and_error_in_pixels():
    truth, mask = torch.tensor([[[0.5, 0.5], [0.1, 0.1]]]), torch.tensor([[True, True]])
    found = objects(torch.zeros(1, 4, 4), torch.zeros(1, 4, 4, 2), torch.tensor([[[0.51, 0.5], [0.9, 0.9]]]))
    quality = detection_quality(found, truth, mask, torch.tensor([[100.0, 100.0]]))
    assert quality["objects"] == 2 and quality["found"] == 1 and quality["false"] == 1
    assert abs(quality["error_sum"] - 1.0) < 1e-4  # 0.01 of 100 px
