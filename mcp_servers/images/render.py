"""The sandbox renderer: a real PNG, deterministic in (prompt, size, style, seed, reference image).

It does not pretend to be a diffusion model. It composes a gradient, shapes and (with a character reference) a
figure, in a palette taken from a hash of the prompt and the reference's dominant colours, and writes the
prompt as a caption, so a human looking at a sandbox post can tell which prompt and persona produced it.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import random
import textwrap

from PIL import Image, ImageDraw, ImageFilter, ImageFont
from PIL.PngImagePlugin import PngInfo

RGB = tuple[int, int, int]

SOFTWARE = "chimera images sandbox"
CAPTION_MAX_LINES = 3


def dominant_colours(image_bytes: bytes, count: int = 4) -> list[RGB]:
    """The `count` most common colours of an image (median cut on a thumbnail), most common first."""
    with Image.open(io.BytesIO(image_bytes)) as opened:
        small = opened.convert("RGB")
    small.thumbnail((64, 64))
    quantized = small.quantize(colors=count, method=Image.Quantize.MEDIANCUT)
    palette = quantized.getpalette() or []
    # Ties broken by palette index so the order is stable.
    ranked = sorted(quantized.getcolors() or [], key=lambda c: (-c[0], c[1]))
    colours: list[RGB] = []
    for _, index in ranked:
        if not isinstance(index, int):  # a "P" image's colours are palette indexes
            continue
        r, g, b = palette[index * 3 : index * 3 + 3]
        colours.append((r, g, b))
    return colours or [(128, 128, 128)]


def _prompt_palette(digest: bytes, count: int = 4) -> list[RGB]:
    """Harmonious colours from a hash: one base hue, the others at fixed offsets around the wheel."""
    base = digest[0] / 255.0
    offsets = (0.0, 0.08, 0.5, 0.58, 0.33)
    colours: list[RGB] = []
    for i in range(count):
        hue = (base + offsets[i % len(offsets)]) % 1.0
        saturation = 0.45 + (digest[1 + i] / 255.0) * 0.4
        value = 0.55 + (digest[6 + i] / 255.0) * 0.4
        r, g, b = colorsys.hsv_to_rgb(hue, saturation, value)
        colours.append((round(r * 255), round(g * 255), round(b * 255)))
    return colours


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), round(a[2] + (b[2] - a[2]) * t))


def _gradient(width: int, height: int, top: RGB, bottom: RGB) -> Image.Image:
    mask = Image.linear_gradient("L").resize((width, height))
    return Image.composite(Image.new("RGB", (width, height), bottom), Image.new("RGB", (width, height), top), mask)


def _shapes(layer: Image.Image, rng: random.Random, palette: list[RGB], style_type: str) -> None:
    width, height = layer.size
    draw = ImageDraw.Draw(layer)
    unit = min(width, height)
    # The style changes the composition the way it changes the look on the real service: flat geometry for
    # DESIGN, many small playful forms for FICTION, a few large soft forms for REALISTIC.
    count = {"DESIGN": 9, "FICTION": 28, "REALISTIC": 6}.get(style_type, 14)
    for _ in range(count):
        colour = rng.choice(palette)
        alpha = 255 if style_type == "DESIGN" else rng.randint(70, 190)
        fill = (*colour, alpha)
        cx, cy = rng.uniform(0, width), rng.uniform(0, height * 0.8)
        size = unit * (rng.uniform(0.2, 0.45) if style_type == "REALISTIC" else rng.uniform(0.04, 0.22))
        kind = "rect" if style_type == "DESIGN" and rng.random() < 0.6 else rng.choice(("circle", "rect", "tri"))
        if kind == "circle":
            draw.ellipse((cx - size, cy - size, cx + size, cy + size), fill=fill)
        elif kind == "rect":
            draw.rectangle((cx - size, cy - size * 0.6, cx + size, cy + size * 0.6), fill=fill)
        else:
            draw.polygon([(cx, cy - size), (cx + size, cy + size * 0.8), (cx - size, cy + size * 0.8)], fill=fill)


def _figure(layer: Image.Image, colours: list[RGB]) -> None:
    """A stylised bust in the reference's colours: where the real service would put the character."""
    width, height = layer.size
    draw = ImageDraw.Draw(layer)
    unit = min(width, height)
    cx, head_y, head_r = width / 2, height * 0.38, unit * 0.13
    skin, clothes, hair = colours[0], colours[1 % len(colours)], colours[2 % len(colours)]
    shoulders_top = head_y + head_r * 1.25
    draw.ellipse(
        (cx - unit * 0.3, shoulders_top, cx + unit * 0.3, shoulders_top + unit * 0.5),
        fill=(*clothes, 255),
        outline=(*_mix(clothes, (0, 0, 0), 0.4), 255),
        width=max(2, unit // 200),
    )
    draw.rectangle((cx - head_r * 0.4, head_y + head_r * 0.6, cx + head_r * 0.4, shoulders_top + 4), fill=(*skin, 255))
    draw.ellipse(
        (cx - head_r * 1.1, head_y - head_r * 1.15, cx + head_r * 1.1, head_y + head_r * 0.4), fill=(*hair, 255)
    )
    draw.ellipse((cx - head_r, head_y - head_r, cx + head_r, head_y + head_r), fill=(*skin, 255))


def _caption(image: Image.Image, prompt: str) -> None:
    width, height = image.size
    font_size = max(14, min(width, height) // 30)
    font = ImageFont.load_default(size=font_size)
    chars_per_line = max(12, int(width / (font_size * 0.55)))
    lines = textwrap.wrap(" ".join(prompt.split()), width=chars_per_line, max_lines=CAPTION_MAX_LINES, placeholder=" …")
    line_height = int(font_size * 1.3)
    band = line_height * len(lines) + font_size
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    draw.rectangle((0, height - band, width, height), fill=(0, 0, 0, 150))
    y = height - band + font_size // 2
    for line in lines:
        draw.text((font_size, y), line, font=font, fill=(255, 255, 255, 255))
        y += line_height
    image.alpha_composite(overlay)


def render_png(
    prompt: str, width: int, height: int, *, seed: int, style_type: str = "AUTO", reference: bytes | None = None
) -> bytes:
    """A PNG of `width` x `height`; the same arguments give the same bytes."""
    material = "\x1f".join((prompt, f"{width}x{height}", style_type, str(seed)))
    digest = hashlib.sha256(material.encode("utf-8") + (hashlib.sha256(reference).digest() if reference else b""))
    rng = random.Random(int.from_bytes(digest.digest()[:8], "big"))
    palette = _prompt_palette(hashlib.sha256(prompt.encode("utf-8")).digest())
    reference_colours = dominant_colours(reference) if reference is not None else []
    if reference_colours:
        # The persona's colours lead; the prompt adds the accents.
        palette = reference_colours[:3] + palette[:2]

    image = _gradient(width, height, _mix(palette[0], (255, 255, 255), 0.35), _mix(palette[1], (0, 0, 0), 0.25))
    image = image.convert("RGBA")
    shapes = Image.new("RGBA", image.size, (0, 0, 0, 0))
    _shapes(shapes, rng, palette, style_type)
    if style_type == "REALISTIC":
        shapes = shapes.filter(ImageFilter.GaussianBlur(radius=min(width, height) / 40))
    image.alpha_composite(shapes)
    if reference_colours:
        figure = Image.new("RGBA", image.size, (0, 0, 0, 0))
        _figure(figure, reference_colours)
        image.alpha_composite(figure)
    _caption(image, prompt)

    info = PngInfo()
    info.add_text("Software", SOFTWARE)
    info.add_itxt("Description", prompt)
    info.add_text("Seed", str(seed))
    out = io.BytesIO()
    image.convert("RGB").save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def render_portrait(name: str, size: int = 768) -> bytes:
    """A square character portrait for a persona: the sandbox's default character reference."""
    digest = hashlib.sha256(f"portrait\x1f{name}".encode()).digest()
    palette = _prompt_palette(digest)
    skin = _mix((224, 172, 140), palette[0], 0.15)
    image = _gradient(size, size, _mix(palette[2], (255, 255, 255), 0.5), palette[3]).convert("RGBA")
    figure = Image.new("RGBA", image.size, (0, 0, 0, 0))
    _figure(figure, [skin, palette[0], _mix(palette[1], (40, 25, 20), 0.6)])
    image.alpha_composite(figure)
    info = PngInfo()
    info.add_text("Software", SOFTWARE)
    info.add_itxt("Description", f"default character reference for {name}")
    out = io.BytesIO()
    image.convert("RGB").save(out, format="PNG", pnginfo=info)
    return out.getvalue()
