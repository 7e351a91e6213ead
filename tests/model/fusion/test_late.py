"""late: the sides meet only in the product of their pooled vectors; nothing to explain."""

import torch

from tests.model.test_head import tiny_head, with_objects


def test_no_looks_and_the_answer_depends_on_the_image_only_through_its_pooled_vector():
    head = tiny_head(fusion="late", objects=2, object_layers=1)
    image = with_objects(head, torch.randn(2, 16, 12))
    text = head.encode_text(torch.randn(2, 5, 20))
    mask = torch.ones(2, 5, dtype=torch.bool)
    out = head(text, mask, image, torch.tensor([0, 1]), output_attentions=True)
    assert out.looks == []
    shuffled = image.select(torch.tensor([0, 1]))
    shuffled.tokens = shuffled.tokens[:, torch.randperm(shuffled.tokens.shape[1])]  # same tokens, any order
    shuffled.objects.tokens = shuffled.objects.tokens.clone()
    shuffled.objects.tokens[0, 1] = 100.0  # image 0's second slot holds no object: it is not pooled
    torch.testing.assert_close(head(text, mask, shuffled, torch.tensor([0, 1])).logits, out.logits)
