"""Training options are declared once; the head's defaults are HeadConfig's."""

from dataclasses import fields

from vqa_cli.model.config import HeadConfig
from vqa_cli.train.options import TrainOptions, cli_fields, parse_int_list


def test_head_defaults_come_from_head_config():
    opts, head = TrainOptions(data="d.csv", out="b"), {f.name: f.default for f in fields(HeadConfig)}
    for name in ("width", "layers", "image_layers", "heads", "object_layers"):
        assert getattr(opts, name) == head[name], name


def test_object_tokens_follow_scenes_unless_given():
    assert TrainOptions(data="d", out="b").object_tokens == 0
    assert TrainOptions(data="d", out="b", scenes="s.json").object_tokens == 8
    assert TrainOptions(data="d", out="b", scenes="s.json", objects=3).object_tokens == 3


def test_every_cli_option_has_help_and_provenance_keeps_what_matters():
    assert all(f.metadata["help"] for f in cli_fields())
    public = TrainOptions(data="d", out="b", device="cuda").public()
    assert "device" not in public and "provenance" not in public and public["width"] == 128
    assert parse_int_list("0,-1") == (0, -1)
