"""How often an explanation points at the object a question is about.

For each generated scene, ask a query_color or query_shape question about a referenced
object, take the peak of the relevance map, map that grid cell's centre back to image
pixels, and check it lies inside the object's bounding box.
"""

from __future__ import annotations

from ..explain import cell_centre
from .render import render
from .synth import scene_rng
from .world import IMAGE_SIZE, references, sample_scene


def peak_hit_rate(engine, scenes: int = 50, seed: int = 4242) -> tuple[float, list[dict]]:
    """(share of peaks inside the referenced object's box, one record per scene)."""
    records = []
    index = 0
    while len(records) < scenes:
        rng = scene_rng(seed, index)
        index += 1
        scene = sample_scene(rng)
        family = rng.choice(("query_color", "query_shape"))
        refs = references(scene, color=family != "query_color", shape=family != "query_shape")
        if not refs:  # no object can be named that way in this scene; take the next scene
            continue
        desc, obj = rng.choice(refs)
        question = f"what {'color' if family == 'query_color' else 'shape'} is the {desc.text()}?"
        embeds = engine.encode_images([render(scene)])
        (answer,) = engine.answer(embeds, [question], explain=True)
        grid = answer.attention
        h, w = len(grid), len(grid[0])
        row, col = max(((r, c) for r in range(h) for c in range(w)), key=lambda rc: grid[rc[0]][rc[1]])
        fx, fy = cell_centre(row, col, (h, w), engine.grid_offset)
        x, y = fx * IMAGE_SIZE, fy * IMAGE_SIZE
        x0, y0, x1, y1 = obj.bbox()
        hit = x0 <= x <= x1 and y0 <= y <= y1
        records.append({"question": question, "answer": answer.answer, "peak": [x, y], "bbox": [x0, y0, x1, y1], "hit": hit})
    return sum(r["hit"] for r in records) / len(records), records
