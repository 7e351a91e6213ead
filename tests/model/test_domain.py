"""Domain statistics: near points are in, far points out; questions by their nearest centroid."""

import torch
import torch.nn.functional as F

from vqa_cli.model.domain import Domain, fit, kmeans, pool_image, pool_question


def test_fitted_thresholds_keep_held_out_points_and_refuse_far_ones():
    torch.manual_seed(0)
    images, held = torch.randn(500, 8), torch.randn(100, 8)
    topics = F.normalize(torch.randn(4, 8), dim=-1)
    questions = topics[torch.randint(0, 4, (400,))] + 0.05 * torch.randn(400, 8)
    held_questions = topics[torch.randint(0, 4, (50,))] + 0.05 * torch.randn(50, 8)
    domain = fit(images, held, questions, held_questions, "blobs")
    fresh = torch.randn(1000, 8)
    assert sum(domain.images_in_domain(fresh)) >= 980 and not any(domain.images_in_domain(fresh + 20))
    assert all(domain.questions_in_domain(held_questions))
    assert not any(domain.questions_in_domain(-topics))  # the opposite direction is no topic of the data
    again = Domain.from_saved(domain.tensors(), domain.settings())
    torch.testing.assert_close(again.image_distance(held), domain.image_distance(held))


def test_kmeans_finds_the_clusters():
    centres = F.normalize(torch.eye(3), dim=-1)
    points = F.normalize(centres.repeat_interleave(20, 0) + 0.01 * torch.randn(60, 3), dim=-1)
    found = kmeans(points, 3, seed=1)
    assert (found @ centres.T).max(0).values.min() > 0.99


def test_pooling_uses_grid_tokens_and_real_question_tokens():
    tokens = torch.zeros(1, 1 + 4 + 2, 2)
    tokens[:, 1:5] = 1.0  # the grid; CLS and registers stay 0
    assert pool_image(tokens, (2, 2), 1).tolist() == [[1.0, 1.0]]
    text, mask = torch.tensor([[[1.0, 0.0], [3.0, 0.0], [9.0, 9.0]]]), torch.tensor([[True, True, False]])
    assert pool_question(text, mask).tolist() == [[2.0, 0.0]]


def test_statistics_of_a_single_image_are_still_usable():
    import torch

    from vqa_cli.model.domain import fit

    one = torch.ones(1, 8)
    domain = fit(one, one, torch.randn(3, 8), torch.randn(2, 8), "tiny")
    assert torch.isfinite(domain.image_precision).all()
