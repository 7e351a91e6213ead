"""HeadConfig round-trips through a bundle's JSON, and ignores fields it does not know."""

from vqa_cli.model.config import HeadConfig


def test_round_trip_and_unknown_fields():
    cfg = HeadConfig(image_dim=12, text_dim=20, num_answers=7, text_layers=(0, -1), objects=6)
    data = cfg.to_dict()
    data["text_layers"] = list(data["text_layers"])  # as JSON gives it back
    data["from_a_newer_version"] = True
    assert HeadConfig.from_dict(data) == cfg
