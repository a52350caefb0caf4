"""Edit quality scored against the true edited image, on structured held-out scenes (demo/scenes.py,
their edits demo/scene_edits.py).

Every case comes with its truth: the edited scene rendered exactly (what lay behind a moved object included),
the scene without the edited object, the object's masks before and after and the bystanders' masks. Per mode
(move, resize, drag, appearance, paste, and the deformations stretch and bend, run as one-handle drags) and
variant it reports:

- whole:    PSNR of the whole image against the truth;
- vacated:  PSNR where the object was and no longer is (move, resize, drag, bend) against the truth there, i.e.
            what lay behind the object (plus the moved object's own soft shadow where it falls there);
- object:   PSNR inside the object's true silhouette after the edit, against the truth (its inner detail);
- IoU / centre: the object as found in the result against the object as found in the truth. "Found" = the
            pixels that differ from the scene without the object by more than FOUND_THRESHOLD, near the edit;
            the same finder runs on the truth, so shadows count the same on both sides, and a ghost left at
            the old place lowers IoU and pulls the centre;
- success:  centre within SUCCESS_RADIUS px and IoU >= SUCCESS_IOU (appearance: object PSNR >= SUCCESS_OBJECT_DB);
- bystander IoU: each other object found in the result (against the scene without it) against the truth's;
- background: PSNR outside a margin (BACKGROUND_MARGIN px) around the object before and after.

Fixed rows: *copy-paste* (the object's pixels copied to the target, its old place filled smoothly from its
surroundings; no diffusion, no model) and *ceiling* (the truth sent once through the demo model's VAE).
Variants (columns of the edit): ``edit_quality.VARIANTS``, the one table of variant definitions.

    .venv/bin/python benchmarks/truth_quality.py                        # 20 scenes per mode, every variant
    .venv/bin/python benchmarks/truth_quality.py --scenes 3 --variants full --modes move,stretch
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import edit_quality  # noqa: E402  (benchmarks/ is not a package)

FOUND_THRESHOLD = 0.12
FOUND_NEAR = 8            # px around the object before and after where the finder looks
SUCCESS_RADIUS = 2.0
SUCCESS_IOU = 0.5
SUCCESS_OBJECT_DB = 20.0
BACKGROUND_MARGIN = 8
COPY_PASTE = "copy-paste (no model)"
CEILING = "ceiling (truth through the VAE)"
METRICS = ("success", "whole_psnr", "vacated_psnr", "object_psnr", "object_iou", "centre_error",
           "bystander_iou", "background_psnr")


def load_scenes():
    """demo/scenes.py (numpy + Pillow), so scenes need neither ComfyUI nor the repo root on sys.path."""
    from dragon_dev.bootstrap import demo_module  # edit_quality put scripts/ on sys.path

    return demo_module("scenes")


def load_edits():
    """demo/scene_edits.py: the edit cases and their truths (numpy + Pillow + scipy)."""
    from dragon_dev.bootstrap import demo_module

    return demo_module("scene_edits")


@dataclass
class TruthCase:
    """An ``EditCase`` with what scoring needs precomputed: where to look, and each bystander's absence."""

    case: object
    near: np.ndarray = field(repr=False)
    background: np.ndarray = field(repr=False)
    bystander_absent: list = field(repr=False)   # (the truth without bystander j, where to look for it)

    @property
    def mode(self) -> str:
        return self.case.mode


def prepare(case) -> TruthCase:
    scenes = load_scenes()
    import dataclasses

    from scipy import ndimage

    near = ndimage.binary_dilation(case.mask_before | case.mask_after if case.mode != "paste" else case.mask_after,
                                   iterations=FOUND_NEAR)
    background = ~case.edit_region(BACKGROUND_MARGIN)
    absent = []
    others = [i for i in range(len(case.after.things)) if i != case.index]
    for i, mask in zip(others, case.bystanders):
        without = scenes.render(dataclasses.replace(case.after, things=tuple(
            t for j, t in enumerate(case.after.things) if j != i))).image
        absent.append((without, ndimage.binary_dilation(mask, iterations=2), mask.any()))
    return TruthCase(case, near, background, absent)


def make_cases(n_scenes: int, modes, first_seed: Optional[int] = None) -> list[TruthCase]:
    edits = load_edits()
    start = edits.HELDOUT_SEED_START + 20_000 if first_seed is None else first_seed
    return [prepare(c) for mode in modes for c in edits.edit_cases(mode, n_scenes, start)]


# ------------------------------------------------------------------------------------------------- scoring


def psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    if not where.any():
        return float("nan")
    mse = float(((a - b) ** 2)[where].mean())
    return min(99.0, 10 * math.log10(1.0 / max(mse, 1e-12)))


def found(image: np.ndarray, absent: np.ndarray, near: np.ndarray) -> np.ndarray:
    return (np.abs(image - absent).max(axis=-1) > FOUND_THRESHOLD) & near


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def _centre(mask: np.ndarray) -> Optional[tuple[float, float]]:
    ys, xs = np.nonzero(mask)
    return None if xs.size == 0 else (float(xs.mean()), float(ys.mean()))


def score(tc: TruthCase, result: np.ndarray) -> dict:
    c = tc.case
    out = {"whole_psnr": psnr(result, c.truth, np.ones(c.truth.shape[:2], bool)),
           "vacated_psnr": psnr(result, c.truth, c.vacated),
           "object_psnr": psnr(result, c.truth, c.mask_after),
           "background_psnr": psnr(result, c.truth, tc.background)}
    mine, true = found(result, c.behind, tc.near), found(c.truth, c.behind, tc.near)
    out["object_iou"] = _iou(mine, true)
    a, b = _centre(mine), _centre(true)
    out["centre_error"] = float("inf") if a is None or b is None else math.hypot(a[0] - b[0], a[1] - b[1])
    if c.mode == "appearance":
        out["success"] = out["object_psnr"] >= SUCCESS_OBJECT_DB
    else:
        out["success"] = out["centre_error"] <= SUCCESS_RADIUS and out["object_iou"] >= SUCCESS_IOU
    ious = [_iou(found(result, without, where), found(c.truth, without, where))
            for without, where, present in tc.bystander_absent if present]
    out["bystander_iou"] = float(np.mean(ious)) if ious else float("nan")
    return out


def summarise(scores: list[dict]) -> dict:
    row = {"n": len(scores)}
    for key in METRICS:
        values = np.array([float(s[key]) for s in scores], dtype=np.float64)
        values = values[np.isfinite(values)] if key != "centre_error" else np.minimum(values, 64.0)
        row[key] = round(float(values.mean()), 3) if values.size else float("nan")
    return row


# ---------------------------------------------------------------------------------------- fixed baselines


def smooth_fill(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """``hole`` filled from its surroundings by normalised Gaussian convolution at growing widths: the smooth
    fill a non-generative editor would use."""
    from scipy import ndimage

    out = image.copy()
    known = (~hole).astype(np.float32)
    todo = hole.copy()
    for sigma in (2, 4, 8, 16, 32):
        weight = ndimage.gaussian_filter(known, sigma)
        ok = todo & (weight > 1e-3)
        for ch in range(3):
            fill = ndimage.gaussian_filter(image[..., ch] * known, sigma) / np.maximum(weight, 1e-6)
            out[..., ch][ok] = fill[ok]
        todo &= ~ok
    return out


def _shifted(a: np.ndarray, dx: int, dy: int) -> np.ndarray:
    out = np.zeros_like(a)
    h, w = a.shape[:2]
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = a[ys, xs]
    return out


def copy_paste(tc: TruthCase) -> np.ndarray:
    """The object's pixels copied to where the edit asks, its old place smoothly filled; no model."""
    from scipy import ndimage

    c = tc.case
    image = c.image.copy()
    if c.mode == "appearance":  # shift the object's mean colour to the reference object's
        shift = c.reference_image[c.reference_mask].mean(0) - image[c.mask_before].mean(0)
        image[c.mask_before] = np.clip(image[c.mask_before] + shift, 0, 1)
        return image
    if c.mode == "paste":
        src, mask = c.reference_image, c.reference_mask
        dx, dy = c.params["dx"], c.params["dy"]
    else:
        src, mask = c.image, c.mask_before
        if "points" in c.params:  # drag, stretch, bend: a patch copy can only translate by the handle's move
            x0, y0, x1, y1 = c.params["points"][0]
            dx, dy = int(round(x1 - x0)), int(round(y1 - y0))
        else:
            dx, dy = c.params["dx"], c.params["dy"]
        image = smooth_fill(image, ndimage.binary_dilation(mask, iterations=1))
    if c.mode == "resize":
        s = c.params["scale"]
        size = image.shape[0]
        ys, xs = np.nonzero(mask)
        cx, cy = xs.mean() + 0.5, ys.mean() + 0.5
        grid = (np.arange(size) + 0.5)
        gx, gy = np.meshgrid((grid - cx) / s + cx - 0.5, (grid - cy) / s + cy - 0.5)
        coords = np.stack([gy, gx])
        moved = np.stack([ndimage.map_coordinates(src[..., ch], coords, order=1) for ch in range(3)], -1)
        moved_mask = ndimage.map_coordinates(mask.astype(np.float32), coords, order=1) >= 0.5
    else:
        moved, moved_mask = _shifted(src, dx, dy), _shifted(mask, dx, dy)
    image[moved_mask] = moved[moved_mask]
    return image


# ------------------------------------------------------------------------------------------------- running


def as_edit(tc: TruthCase) -> edit_quality.Case:
    """The case in the form ``edit_quality.Editor`` runs through the pack's nodes (deformations are drags)."""
    c = tc.case
    mode = "drag" if c.mode in ("stretch", "bend") else c.mode
    region = c.edit_region(3)
    object_mask = c.reference_mask if c.mode == "paste" else c.mask_before
    return edit_quality.Case(mode, c.seed, c.image, object_mask, (0.0, 0.0, 0.0), (0.0, 0.0), c.mask_after,
                             region, dict(c.params), c.reference_image, c.reference_mask, c.truth)


def run(cases: list[TruthCase], steps: int, variants: dict, baselines: bool = True,
        editor: Optional[edit_quality.Editor] = None) -> tuple[dict, list]:
    """``editor``: one already built (another weight file, demo/acceptance.py), else the committed model's."""
    editor = editor or edit_quality.Editor(steps)
    rows: dict = {}
    results: list = []

    def record(tc, name, image):
        s = score(tc, image)
        rows.setdefault((tc.mode, name), []).append(s)
        results.append((tc, name, image, s))
        print(f"[{len(results)}] {tc.mode} {tc.case.seed} {name}: "
              + " ".join(f"{k} {float(s[k]):.2f}" for k in METRICS), file=sys.stderr, flush=True)

    if baselines:
        for tc in cases:
            record(tc, COPY_PASTE, copy_paste(tc))
            record(tc, CEILING, editor.round_trip(tc.case.truth))
    for name, variant in variants.items():
        for tc in cases:
            record(tc, name, editor.edit(as_edit(tc), variant))
    table = {key: summarise(scores) for key, scores in rows.items()}
    return table, results


def indistinguishable(results: list, reference: str = "full", tolerance: float = 2e-3) -> list[str]:
    """Variants whose results equal the reference variant's, per mode (mean absolute pixel difference below
    ``tolerance`` on every case): the model, not the metric, cannot see that mechanism there."""
    by = {(tc.mode, tc.case.seed, name): image for tc, name, image, _ in results}
    notes = []
    for mode in sorted({tc.mode for tc, *_ in results}):
        names = sorted({name for tc, name, *_ in results if tc.mode == mode} - {reference, COPY_PASTE, CEILING})
        seeds = sorted({tc.case.seed for tc, *_ in results if tc.mode == mode})
        for name in names:
            if (mode, seeds[0], reference) not in by:
                continue
            diffs = [float(np.abs(by[(mode, s, name)] - by[(mode, s, reference)]).mean()) for s in seeds]
            if max(diffs) < tolerance:
                notes.append(f"{mode}: '{name}' gives the same images as '{reference}' "
                             f"(largest mean pixel difference {max(diffs):.4f})")
    return notes


def markdown(table: dict) -> str:
    head = ("| mode | variant | n | success | whole dB | vacated dB | object dB | object IoU | centre px "
            "| bystander IoU | background dB |")
    lines = [head, "|" + "---|" * 11]
    for (mode, name), row in table.items():
        cells = [f"{row[k]:.2f}" if isinstance(row[k], float) and math.isfinite(row[k]) else "–" for k in METRICS]
        lines.append(f"| {mode} | {name} | {row['n']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def contact_sheet(results: list, path: Path, zoom: int = 2, per_mode: int = 2) -> None:
    """Rows: cases (``per_mode`` per mode); columns: input | truth | each variant and fixed row, as run."""
    from PIL import Image, ImageDraw

    names = list(dict.fromkeys(name for _, name, _, _ in results))
    images = {(id(tc), name): (image, s) for tc, name, image, s in results}
    cases, seen = [], {}
    for tc, *_ in results:
        if id(tc) not in {id(c) for c in cases} and seen.get(tc.mode, 0) < per_mode:
            cases.append(tc)
            seen[tc.mode] = seen.get(tc.mode, 0) + 1
    cell, pad, head = 64 * zoom, 4, 14
    cols = ["input", "truth", *names]
    sheet = Image.new("RGB", (len(cols) * (cell + pad), head + len(cases) * (cell + pad)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for j, name in enumerate(cols):
        draw.text((j * (cell + pad) + 2, 1), name[:22], fill=(0, 0, 0))
    for i, tc in enumerate(cases):
        y = head + i * (cell + pad)
        row = [(tc.case.image, None), (tc.case.truth, None)] + [images.get((id(tc), n), (None, None)) for n in names]
        for j, (image, s) in enumerate(row):
            if image is None:
                continue
            tile = Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8)).resize((cell, cell), Image.NEAREST)
            sheet.paste(tile, (j * (cell + pad), y))
            label = tc.mode if j == 0 else (f"{s['whole_psnr']:.1f} dB" if s else "")
            draw.text((j * (cell + pad) + 2, y + cell - 11), label, fill=(255, 255, 255))
    sheet.save(path)


def main(argv: Optional[list[str]] = None) -> None:
    edits = load_edits()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenes", type=int, default=20, help="held-out scenes per mode (default 20)")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--modes", default=",".join(edits.MODES))
    ap.add_argument("--variants", default=",".join(edit_quality.VARIANTS),
                    help="comma-separated names from edit_quality.VARIANTS; '' for the fixed rows only")
    ap.add_argument("--out", default="out/truth_quality")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    cases = make_cases(args.scenes, [m for m in args.modes.split(",") if m])
    chosen = [v for v in args.variants.split(",") if v]
    unknown = [v for v in chosen if v not in edit_quality.VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {list(edit_quality.VARIANTS)}")
    table, results = run(cases, args.steps, {v: edit_quality.VARIANTS[v] for v in chosen})
    print(markdown(table))
    notes = indistinguishable(results)
    for note in notes:
        print("NOTE", note, "- the model cannot see this mechanism on these scenes")
    print(f"{len(results)} results in {time.perf_counter() - started:.0f} s "
          f"({args.scenes} scenes per mode, {args.steps} steps)")
    (out / "truth_quality.json").write_text(json.dumps(
        {f"{m} / {v}": row for (m, v), row in table.items()}, indent=2))
    per_case = [{"mode": tc.mode, "seed": tc.case.seed, "variant": name,
                 **{k: (float(v) if math.isfinite(float(v)) else None) for k, v in s.items()}}
                for tc, name, _, s in results]
    (out / "cases.json").write_text(json.dumps(per_case, indent=1))
    contact_sheet(results, out / "contact_sheet.png")
    print(f"wrote {out / 'truth_quality.json'}, {out / 'cases.json'} and {out / 'contact_sheet.png'}")


if __name__ == "__main__":
    main()
