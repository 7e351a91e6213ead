"""VQAModel: encode an image once, then answer; frozen encoders stay frozen and in eval mode."""

import torch

from tests.conftest import tiny_model


def test_one_image_many_questions_equals_one_each():
    model = tiny_model().eval()
    with torch.no_grad():
        image = model.encode_image(torch.randn(1, 3, 32, 32))
        ids = torch.tensor([[2, 10, 11, 3], [2, 12, 13, 3]])
        mask = torch.ones_like(ids)
        text = model.encode_text(ids, mask)
        together = model.answer(text, mask, image, torch.tensor([0, 0])).logits
        alone = model.answer(text[1:], mask[1:], image, torch.tensor([0])).logits
        with_attentions = model.answer(text, mask, image, torch.tensor([0, 0]), output_attentions=True)
    torch.testing.assert_close(together[1:], alone)
    torch.testing.assert_close(with_attentions.logits, together)
    assert len([look for look in with_attentions.looks if look.grid is not None]) == model.config.layers


def test_frozen_text_encoder_stays_in_eval_mode_and_untrainable():
    model = tiny_model().train()
    assert not model.text_encoder.training and model.image_encoder.training
    assert not any(p.requires_grad for p in model.text_encoder.parameters())
