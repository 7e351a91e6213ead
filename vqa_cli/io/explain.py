"""Drawing where the model looked: the relevance map (model/explain.py) over the image, as PNG files."""

from __future__ import annotations

from ..errors import InputError

_PALETTE = ((0, 0, 4), (87, 16, 110), (188, 55, 84), (249, 142, 9), (252, 255, 164))  # inferno, roughly


def overlay(image, heatmap, caption: str, offset: tuple[float, float] = (0.0, 0.0)):
    """The image with the map blended on top and a caption band; same size as the image.

    offset (from grid_offset) shifts the map so each cell sits where the encoder looked.
    """
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    width, height = image.size
    values = Image.fromarray(np.asarray(heatmap, dtype=np.float32), mode="F").resize((width, height), Image.Resampling.BILINEAR)
    dx, dy = offset[0] * width, offset[1] * height
    values = values.transform(values.size, Image.Transform.AFFINE, (1, 0, -dx, 0, 1, -dy), fillcolor=0.0)
    m = np.clip(np.asarray(values), 0.0, 1.0)[..., None]  # (H, W, 1)
    anchors = np.linspace(0, 1, len(_PALETTE))
    colors = np.stack([np.interp(m[..., 0], anchors, [c[i] for c in _PALETTE]) for i in range(3)], axis=-1)
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    alpha = 0.65 * m
    blended = Image.fromarray((base * (1 - alpha) + colors * alpha).astype(np.uint8))
    draw = ImageDraw.Draw(blended, "RGBA")
    size = max(10, width // 24)
    font = ImageFont.load_default(size=size)
    band = size + size // 2 + 4
    draw.rectangle((0, height - band, width, height), fill=(0, 0, 0, 170))
    draw.text((4, height - band + 2), _fit(draw, caption, font, width - 8), fill=(255, 255, 255), font=font)
    return blended


def _fit(draw, text: str, font, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def output_paths(out, count: int) -> list:
    """OUT.png for one question; OUT-1.png, OUT-2.png, ... for several."""
    from pathlib import Path

    out = Path(out)
    if count == 1:
        return [out]
    return [out.with_name(f"{out.stem}-{n}{out.suffix or '.png'}") for n in range(1, count + 1)]


def write_explanations(image, answers, out, offset=(0.0, 0.0)) -> list:
    """One PNG per question: the image, its relevance map and the question and answer as caption."""
    paths = output_paths(out, len(answers))
    for path, answer in zip(paths, answers):
        caption = f"{answer.question}  ->  {answer.answer} ({answer.score:.2f})"
        try:
            overlay(image, answer.attention, caption, offset).save(path)
        except (OSError, ValueError) as e:
            raise InputError(f"cannot write {path}: {e}") from None
    return paths
