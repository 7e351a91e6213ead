import random

from vqa_cli.shapes.render import render
from vqa_cli.shapes.world import COLORS, IMAGE_SIZE, MARGIN, MIDLINE, Scene, ShapeObject, sample_scene


def test_sampled_scenes_follow_the_placement_rules():
    rng = random.Random(0)
    for _ in range(200):
        scene = sample_scene(rng)
        assert 2 <= len(scene.objects) <= 6
        assert 215 <= scene.background <= 255
        for obj in scene.objects:
            x0, y0, x1, y1 = obj.bbox()
            assert x0 >= MARGIN and y0 >= MARGIN and x1 <= IMAGE_SIZE - 1 - MARGIN and y1 <= IMAGE_SIZE - 1 - MARGIN
            assert abs(obj.x - MIDLINE) > 12 and abs(obj.y - MIDLINE) > 12
            radius = {"small": (14, 18), "large": (26, 32)}[obj.size]
            assert radius[0] <= obj.r <= radius[1]
            assert all(abs(c - base) <= 12 for c, base in zip(obj.rgb, COLORS[obj.color]))
        for i, a in enumerate(scene.objects):
            for b in scene.objects[i + 1 :]:
                assert a.distance(b) >= a.r + b.r + 6


def test_render_draws_each_object_in_its_colour():
    red = ShapeObject("square", "large", "red", 60, 60, 30, COLORS["red"])
    blue = ShapeObject("triangle", "small", "blue", 190, 190, 16, COLORS["blue"])
    image = render(Scene(230, (red, blue)))
    assert image.size == (256, 256) and image.mode == "RGB"
    assert image.getpixel((60, 60)) == COLORS["red"]
    assert image.getpixel((190, 192)) == COLORS["blue"]
    assert image.getpixel((128, 128)) == (230, 230, 230)


def test_scene_json_round_trip():
    scene = sample_scene(random.Random(5))
    assert Scene.from_json(scene.to_json()) == scene
