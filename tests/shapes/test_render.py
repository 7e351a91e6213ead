"""Rendering a Shapes scene: the image size, the background's gray, each object in its own colour where it lies."""

from __future__ import annotations

import numpy as np
import pytest

from vqa_cli.shapes.render import render
from vqa_cli.shapes.synth import scene_rng
from vqa_cli.shapes.world import COLORS, IMAGE_SIZE, Scene, ShapeObject, sample_scene

JITTERED = {"red": (231, 33, 45), "green": (35, 178, 52), "blue": (48, 71, 229)}


def hand_made() -> Scene:
    """One object of each shape, in jittered colours unlike any palette colour, on a light gray."""
    return Scene(
        background=228,
        objects=(
            ShapeObject("circle", "large", "red", 60.0, 64.0, 28.0, JITTERED["red"]),
            ShapeObject("square", "small", "green", 190.5, 70.25, 16.0, JITTERED["green"]),
            ShapeObject("triangle", "large", "blue", 150.0, 190.0, 30.0, JITTERED["blue"]),
        ),
    )


def inside_any_bbox(scene: Scene) -> np.ndarray:
    """(H, W) bool: the pixels within one pixel of some object's bounding box."""
    ys, xs = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE]
    near = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
    for obj in scene.objects:
        x0, y0, x1, y1 = obj.bbox()
        near |= (xs >= x0 - 1) & (xs <= x1 + 1) & (ys >= y0 - 1) & (ys <= y1 + 1)
    return near


def centre_pixel(pixels: np.ndarray, obj: ShapeObject) -> tuple[int, ...]:
    return tuple(int(v) for v in pixels[int(round(obj.y)), int(round(obj.x))])


def test_a_scene_is_a_256_pixel_rgb_square():
    image = render(hand_made())
    assert image.mode == "RGB" and image.size == (IMAGE_SIZE, IMAGE_SIZE) == (256, 256)


def test_background_is_the_scenes_gray_and_objects_their_rendered_colour():
    scene = hand_made()
    pixels = np.asarray(render(scene))
    outside = ~inside_any_bbox(scene)
    assert outside.sum() > 0.5 * IMAGE_SIZE**2
    assert (pixels[outside] == scene.background).all()  # every channel: a gray of exactly that level
    for obj in scene.objects:
        assert centre_pixel(pixels, obj) == obj.rgb != COLORS[obj.color]  # the jittered colour, not the palette's


def test_an_empty_scene_is_all_background():
    pixels = np.asarray(render(Scene(background=250, objects=())))
    assert (pixels == 250).all()


def test_each_shape_covers_its_own_area():
    """A square fills its bbox's corners; a circle leaves them as background; a triangle's apex is up."""
    scene = hand_made()
    pixels = np.asarray(render(scene))
    circle, square, triangle = scene.objects
    x0, y0, x1, y1 = (int(round(v)) for v in square.bbox())
    assert tuple(pixels[y0 + 1, x0 + 1]) == square.rgb and tuple(pixels[y1 - 1, x1 - 1]) == square.rgb
    x0, y0, _, _ = circle.bbox()
    assert (pixels[int(y0) + 2, int(x0) + 2] == scene.background).all()
    R = 1.15 * triangle.r
    assert tuple(pixels[int(triangle.y - R + 3), int(triangle.x)]) == triangle.rgb  # just below the apex
    assert (pixels[int(triangle.y - R + 3), int(triangle.x - R * 0.8)] == scene.background).all()  # beside it: empty


@pytest.mark.parametrize("index", range(5))
def test_sampled_scenes_show_every_object_on_their_gray(index):
    scene = sample_scene(scene_rng(3, index))
    pixels = np.asarray(render(scene))
    assert pixels.shape == (IMAGE_SIZE, IMAGE_SIZE, 3)
    assert (pixels[~inside_any_bbox(scene)] == scene.background).all()
    for obj in scene.objects:
        assert centre_pixel(pixels, obj) == obj.rgb
