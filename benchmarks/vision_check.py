"""Calibrating the vision check's offline likeness test (chimera/safety/vision/offline.py) on the sandbox renderer.

    .venv/bin/python benchmarks/vision_check.py [--json]

For each persona's character reference (the images server's default portrait of an account), images are rendered
as the images server renders them (mcp_servers/images/render.py): with that reference ("with"), with another
persona's reference ("other"), and without any ("none"), over several prompts, aspect ratios and styles. It
prints the distribution of each measure's distance to the reference in each group:

- `colour` (the one the check uses): `character_distance`, CIELAB ΔE of the reference's dominant colours, also
  after a JPEG round trip of the "with" images ("with-jpeg", quality 85);
- `phash` and `dhash`: perceptual hashes of the whole image (Hamming distance of 64 bits), for comparison.

The threshold is chosen on the tuning half (the midpoint between the farthest "with" or "with-jpeg" image and
the nearest "other" or "none" image, rounded down to 0.5) and reported on the held-out half (other prompts, seeds and
personas), with the offline check's time per image.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chimera.safety.vision.offline import OFF_CHARACTER_DISTANCE, ImageChecks, character_distance  # noqa: E402
from mcp_servers.images.render import render_png, render_portrait  # noqa: E402
from mcp_servers.images.service import ASPECT_RATIOS  # noqa: E402

SPLITS: dict[str, dict[str, Any]] = {
    "tuning": {
        "personas": ["mira", "leo", "ana", "kai"],
        "prompts": [
            "Mira Solis, visible mending on a denim jacket. Photo, no text in the image.",
            "a bowl of carrot-top soup in autumn light",
            "market stall with wonky tomatoes and bruised peaches",
            "city bike ride at dawn along the river",
        ],
        "seed": 11,
    },
    "heldout": {
        "personas": ["zoe", "sam", "ines", "tomas"],
        "prompts": [
            "sewing machine close up on a kitchen table",
            "thrift shop haul, three jackets and a scarf",
            "rainy window of a small cafe, steam on the glass",
            "knitting a scarf on a sunday afternoon",
        ],
        "seed": 977,
    },
}
RATIOS = ("4x5", "1x1", "16x9", "9x16")
WITH_STYLES = ("AUTO", "REALISTIC", "FICTION")  # the styles a character reference allows
PLAIN_STYLES = ("AUTO", "GENERAL", "REALISTIC", "DESIGN", "FICTION")
GROUPS = ("with", "with-jpeg", "other", "none")
ON_CHARACTER = ("with", "with-jpeg")
JPEG_QUALITY = 85


@dataclass
class Sample:
    group: str
    colour: float
    phash: int
    dhash: int


def _grey(image: Image.Image, size: tuple[int, int]) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.asarray(image.convert("L").resize(size, Image.Resampling.LANCZOS), dtype=np.float64)


def phash(image: Image.Image, size: int = 8, factor: int = 4) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """imagehash.phash's algorithm: a 32x32 greyscale image, its 2-D DCT-II, the top-left 8x8 above their median
    (bit for bit imagehash 4.3.2's, except where coefficients tie with the median, as in a symmetric portrait)."""
    n = size * factor
    pixels = _grey(image, (n, n))
    k = np.arange(n)
    basis = np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * n))
    low = (basis @ pixels @ basis.T)[:size, :size]
    return np.asarray(low > np.median(low))


def dhash(image: Image.Image, size: int = 8) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """imagehash.dhash's algorithm: a 9x8 greyscale image, each pixel brighter than its right neighbour."""
    pixels = _grey(image, (size + 1, size))
    return np.asarray(pixels[:, 1:] > pixels[:, :-1])


def hamming(a: np.ndarray[Any, np.dtype[np.bool_]], b: np.ndarray[Any, np.dtype[np.bool_]]) -> int:
    return int(np.count_nonzero(a != b))


def _decoded(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")


def _jpeg(image: Image.Image, quality: int = JPEG_QUALITY) -> Image.Image:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return _decoded(out.getvalue())


def run_split(spec: dict[str, Any]) -> tuple[list[Sample], list[float]]:
    personas: list[str] = spec["personas"]
    references = {p: render_portrait(p) for p in personas}
    ref_hashes = {p: (phash(_decoded(r)), dhash(_decoded(r))) for p, r in references.items()}
    samples: list[Sample] = []
    timings: list[float] = []
    checks = ImageChecks()
    for i, prompt in enumerate(spec["prompts"]):
        for j, ratio in enumerate(RATIOS):
            width, height = ASPECT_RATIOS[ratio]
            seed = spec["seed"] + 31 * i + j
            plain = render_png(prompt, width, height, seed=seed, style_type=PLAIN_STYLES[(i + j) % len(PLAIN_STYLES)])
            style = WITH_STYLES[(i + j) % len(WITH_STYLES)]
            rendered = {
                p: render_png(prompt, width, height, seed=seed, style_type=style, reference=r)
                for p, r in references.items()
            }
            for owner, data in rendered.items():  # the whole offline check, as the judge runs it
                start = time.perf_counter()
                checks.check(data, None, "instagram", references[owner])
                timings.append(time.perf_counter() - start)
            images: list[tuple[str | None, Image.Image]] = [(None, _decoded(plain))]
            images += [(p, _decoded(d)) for p, d in rendered.items()]
            for ours, reference in references.items():
                ph, dh = ref_hashes[ours]
                for who, image in images:
                    group = "none" if who is None else ("with" if who == ours else "other")
                    colour = character_distance(image, reference)
                    samples.append(Sample(group, colour, hamming(phash(image), ph), hamming(dhash(image), dh)))
                    if group == "with":  # the same image after a JPEG round trip (a re-encoding generator)
                        colour = character_distance(_jpeg(image), reference)
                        samples.append(Sample("with-jpeg", colour, -1, -1))
    return samples, timings


def describe(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]

    return {
        "n": len(ordered),
        "min": ordered[0],
        "p5": pct(5),
        "median": statistics.median(ordered),
        "p95": pct(95),
        "max": ordered[-1],
    }


def threshold(samples: list[Sample]) -> tuple[float, float, float]:
    """(the farthest on-character image, the nearest off-character one, the midpoint rounded down to 0.5)."""
    on = max(s.colour for s in samples if s.group in ON_CHARACTER)
    off = min(s.colour for s in samples if s.group not in ON_CHARACTER)
    return on, off, math.floor((on + off) / 2 * 2) / 2


def errors(samples: list[Sample], limit: float) -> dict[str, int]:
    return {
        "with_flagged": sum(s.group in ON_CHARACTER and s.colour > limit for s in samples),
        "with": sum(s.group in ON_CHARACTER for s in samples),
        "off_missed": sum(s.group not in ON_CHARACTER and s.colour <= limit for s in samples),
        "off": sum(s.group not in ON_CHARACTER for s in samples),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    report: dict[str, Any] = {"shipped_threshold": OFF_CHARACTER_DISTANCE, "splits": {}}
    tuned: float | None = None
    for name, spec in SPLITS.items():
        samples, timings = run_split(spec)
        split: dict[str, Any] = {
            measure: {
                g: describe([float(getattr(s, measure)) for s in samples if s.group == g])
                for g in GROUPS
                if measure == "colour" or g != "with-jpeg"
            }
            for measure in ("colour", "phash", "dhash")
        }
        on, off, mid = threshold(samples)
        if name == "tuning":
            tuned = mid
        split["separation"] = {"farthest_with": on, "nearest_other_or_none": off, "midpoint": mid}
        split["errors_at_shipped_threshold"] = errors(samples, OFF_CHARACTER_DISTANCE)
        split["check_ms_per_image"] = describe([t * 1000 for t in timings])
        report["splits"][name] = split
    report["tuned_threshold"] = tuned
    report["seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"shipped OFF_CHARACTER_DISTANCE = {OFF_CHARACTER_DISTANCE:g}; chosen on the tuning split: {tuned:g}")
    for name, split in report["splits"].items():
        print(f"\n== {name} ({', '.join(SPLITS[name]['personas'])}) ==")
        print(f"{'measure':8} {'group':9} {'n':>4} {'min':>7} {'p5':>7} {'median':>7} {'p95':>7} {'max':>7}")
        for measure in ("colour", "phash", "dhash"):
            for g, d in split[measure].items():
                print(
                    f"{measure:8} {g:9} {d['n']:>4} {d['min']:>7.1f} {d['p5']:>7.1f} {d['median']:>7.1f} "
                    f"{d['p95']:>7.1f} {d['max']:>7.1f}"
                )
        sep, err, ms = split["separation"], split["errors_at_shipped_threshold"], split["check_ms_per_image"]
        print(
            f"colour: farthest 'with' (PNG or JPEG) {sep['farthest_with']:.1f}, nearest 'other'/'none' "
            f"{sep['nearest_other_or_none']:.1f}; at {OFF_CHARACTER_DISTANCE:g}: {err['with_flagged']} of "
            f"{err['with']} on-character images flagged, {err['off_missed']} of {err['off']} off-character missed"
        )
        print(f"offline check per image: median {ms['median']:.0f} ms, max {ms['max']:.0f} ms")
    print(f"\n{report['seconds']} s")


if __name__ == "__main__":
    main()
