"""How often an explanation points at the object an answer is about, on generated Shapes scenes.

For each scene, ask one question, take the peak of the relevance map, map that grid cell's
centre back to image pixels, and check it lies inside the right object's bounding box:
  query_color / query_shape: the object the question refers to;
  closest / furthest:        the object the answer describes (the one nearest to, or
                             furthest from, the referenced object); each record also says
                             whether the peak lies on the referenced object instead.
"""

from __future__ import annotations

from .questions import related_object
from .render import render
from .synth import scene_rng
from .world import IMAGE_SIZE, references, sample_scene
from ..model.explain import cell_centre

ATTRIBUTE = ("query_color", "query_shape")
RELATIONAL = ("closest", "furthest")


def _question(scene, rng, families):
    """(question, the object its answer is about, the object it refers to), or None when the scene allows none."""
    family = rng.choice(families)
    if family in ATTRIBUTE:
        refs = references(scene, color=family != "query_color", shape=family != "query_shape")
        if not refs:
            return None
        desc, obj = rng.choice(refs)
        return f"what {'color' if family == 'query_color' else 'shape'} is the {desc.text()}?", obj, obj
    nearest = family == "closest"
    triples = [(d, related_object(scene, ref, nearest), ref) for d, ref in references(scene)]
    triples = [t for t in triples if t[1] is not None]
    if not triples:
        return None
    desc, target, ref = rng.choice(triples)
    word = "closest to" if nearest else "furthest from"
    return f"what {rng.choice(('color', 'shape'))} is the object {word} the {desc.text()}?", target, ref


def peak_hit_rate(engine, scenes: int = 50, seed: int = 4242, families=ATTRIBUTE) -> tuple[float, list[dict]]:
    """(share of peaks inside the target object's box, one record per scene)."""
    records = []
    index = 0
    while len(records) < scenes:
        rng = scene_rng(seed, index)
        index += 1
        scene = sample_scene(rng)
        posed = _question(scene, rng, families)
        if posed is None:  # no object can be named that way in this scene; take the next scene
            continue
        question, obj, ref = posed
        embeds = engine.encode_images([render(scene)])
        (answer,) = engine.answer(embeds, [question], explain=True)
        grid = answer.attention
        h, w = len(grid), len(grid[0])
        row, col = max(((r, c) for r in range(h) for c in range(w)), key=lambda rc: grid[rc[0]][rc[1]])
        fx, fy = cell_centre(row, col, (h, w), engine.grid_offset)
        x, y = fx * IMAGE_SIZE, fy * IMAGE_SIZE
        x0, y0, x1, y1 = obj.bbox()
        hit = x0 <= x <= x1 and y0 <= y <= y1
        rx0, ry0, rx1, ry1 = ref.bbox()
        on_reference = rx0 <= x <= rx1 and ry0 <= y <= ry1
        records.append({"question": question, "answer": answer.answer, "peak": [x, y], "bbox": [x0, y0, x1, y1], "hit": hit,
                        "on_reference": on_reference})
    return sum(r["hit"] for r in records) / len(records), records
