"""Drawing explanations: the overlay keeps the image's size, and several questions get numbered files."""

from vqa_cli.io.explain import output_paths, overlay


def test_overlay_keeps_the_image_size_and_paths_number_several_questions(tmp_path):
    from PIL import Image

    image = Image.new("RGB", (40, 30), (200, 200, 200))
    assert overlay(image, [[0.0, 1.0], [0.5, 0.2]], "what? -> red").size == (40, 30)
    assert output_paths(tmp_path / "why.png", 1) == [tmp_path / "why.png"]
    assert output_paths(tmp_path / "why.png", 2) == [tmp_path / "why-1.png", tmp_path / "why-2.png"]
