"""Draw a Shapes scene as a 256x256 RGB image."""

from __future__ import annotations

import math

from PIL import Image, ImageDraw

from .world import IMAGE_SIZE, Scene


def render(scene: Scene) -> Image.Image:
    image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), (scene.background,) * 3)
    draw = ImageDraw.Draw(image)
    for obj in scene.objects:
        if obj.shape == "circle":
            draw.ellipse(obj.bbox(), fill=obj.rgb)
        elif obj.shape == "square":
            draw.rectangle(obj.bbox(), fill=obj.rgb)
        else:
            R = 1.15 * obj.r
            dx = R * math.sqrt(3) / 2
            draw.polygon([(obj.x, obj.y - R), (obj.x + dx, obj.y + R / 2), (obj.x - dx, obj.y + R / 2)], fill=obj.rgb)
    return image
