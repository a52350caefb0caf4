"""Edit-quality benchmark on the embedded demo model: does each edit do what it claims?

Held-out synthetic scenes (seeds >= HELDOUT_SEED_START, never seen in training), each with a known object and
a requested edit whose correct answer can be rendered exactly. Per mode and variant it reports:
- success: the object (found again by colour) has its centre within 2 px of where the edit asked
  (appearance: the base object's colour is within 0.15 of the reference object's, RGB distance);
- identity IoU: the found object's silhouette against the correct answer's;
- background PSNR outside the edit region against the original image.
Variants: full method; no energy guidance; no cross-branch attention; neither (copy-paste start latent and the
two locks only); no object lock; the paper's method (full, without the background and object locks). A ceiling
row per mode scores the correct answer sent once through the autoencoder (no diffusion).

    .venv/bin/python benchmarks/edit_quality.py --scenes 10 --out out/quality
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

MODES = ("move", "resize", "drag", "appearance", "paste")
VARIANTS = {
    "full": {},
    "no energy": {"energy_scale": 0.0},
    "no attention": {"cross_branch_attention": False},
    "neither": {"energy_scale": 0.0, "cross_branch_attention": False},
    "no object lock": {"keep_object": 0.0},
    "paper (no locks)": {"keep_background": 0.0, "keep_object": 0.0},
    # the authors' algorithm exactly (DragonGuidanceOptions' presets; they need an alpha_bar_0 inversion)
    "DragonDiffusion (paper)": {"preset": "DragonDiffusion (paper)", "inversion_end": "alpha_bar_0 (paper)"},
    "DiffEditor (paper)": {"preset": "DiffEditor (paper)", "inversion_end": "alpha_bar_0 (paper)"},
    "paper preset without energy": {"preset": "DragonDiffusion (paper)", "inversion_end": "alpha_bar_0 (paper)",
                                    "energy_scale": 0.0},
}
# Not an edit: the correct answer rendered and sent once through the autoencoder, i.e. the best score any edit
# decoded by this model's VAE can reach (the VAE softens edges and shifts colours a little).
CEILING = "ceiling (answer through the VAE)"
TARGETS = {"success_move_drag": 0.9, "background_psnr": 28.0, "identity_iou": 0.8}
COLOR_TOLERANCE = 0.25


@dataclass
class Case:
    mode: str
    seed: int
    image: np.ndarray                 # [64, 64, 3] original (base) image
    object_mask: np.ndarray           # bool, the edited object in the base (or reference for paste)
    color: tuple                      # colour the result's object should have
    expected_center: tuple[float, float]
    expected_mask: np.ndarray         # silhouette of the correct answer
    edit_region: np.ndarray           # bool: where the image may change
    params: dict = field(default_factory=dict)
    reference_image: Optional[np.ndarray] = None
    reference_mask: Optional[np.ndarray] = None
    expected_image: Optional[np.ndarray] = None  # the correct answer, rendered


# ------------------------------------------------------------------------------------------- scenes


def load_synthetic():
    """demo/synthetic.py (numpy only), so scenes need neither ComfyUI nor the repo root on sys.path."""
    from dragon_dev.bootstrap import demo_module

    return demo_module("synthetic")


def make_cases(n_scenes: int, modes=MODES, first_seed: Optional[int] = None) -> list[Case]:
    synthetic = load_synthetic()
    start = synthetic.HELDOUT_SEED_START + 5000 if first_seed is None else first_seed
    cases = []
    for mode in modes:
        k, seed = 0, start
        while k < n_scenes:
            case = _case(synthetic, mode, seed)
            seed += 1
            if case is not None:
                cases.append(case)
                k += 1
    return cases


def _case(synthetic, mode: str, seed: int) -> Optional[Case]:
    rng = np.random.default_rng(seed)
    scene = synthetic.random_scene(seed, n_objects=1)
    rendered = synthetic.render_scene(scene)
    obj, info = scene.objects[0], rendered.objects[0]
    size = scene.size
    if mode in ("move", "drag"):
        angle = rng.uniform(0, 2 * math.pi)
        dist = rng.uniform(8, 14)
        dx, dy = int(round(dist * math.cos(angle))), int(round(dist * math.sin(angle)))
        moved = dataclasses.replace(obj, center=(obj.center[0] + dx, obj.center[1] + dy))
        if not _inside(moved, size):
            return None
        answer = synthetic.render_scene(dataclasses.replace(scene, objects=(moved,)))
        target = answer.objects[0]
        region = _dilate(info.mask | target.mask, 3)
        params = {"dx": dx, "dy": dy}
        if mode == "drag":
            params["points"] = [[round(obj.center[0], 1), round(obj.center[1], 1),
                                 round(obj.center[0] + dx, 1), round(obj.center[1] + dy, 1)]]
        return Case(mode, seed, rendered.image, info.mask, obj.color, moved.center, target.mask, region, params,
                    expected_image=answer.image)
    if mode == "resize":
        scale = float(rng.choice([0.7, 1.35]))
        resized = dataclasses.replace(obj, size=obj.size * scale)
        if not _inside(resized, size):
            return None
        answer = synthetic.render_scene(dataclasses.replace(scene, objects=(resized,)))
        target = answer.objects[0]
        region = _dilate(info.mask | target.mask, 3)
        return Case(mode, seed, rendered.image, info.mask, obj.color, obj.center, target.mask, region,
                    {"dx": 0, "dy": 0, "scale": scale}, expected_image=answer.image)
    # appearance and paste need a second scene whose object has a clearly different colour
    ref_scene = synthetic.random_scene(seed + 7919, n_objects=1)
    ref_obj = ref_scene.objects[0]
    if np.linalg.norm(np.subtract(ref_obj.color, obj.color)) < 0.5:
        return None
    ref_rendered = synthetic.render_scene(ref_scene)
    if mode == "appearance":
        recoloured = dataclasses.replace(obj, color=ref_obj.color)
        answer = synthetic.render_scene(dataclasses.replace(scene, objects=(recoloured,)))
        return Case(mode, seed, rendered.image, info.mask, ref_obj.color, obj.center, answer.objects[0].mask,
                    _dilate(info.mask, 2), {}, ref_rendered.image, ref_rendered.objects[0].mask, answer.image)
    # paste: the reference object goes to a free place of the base scene
    for _ in range(20):
        place = (float(rng.uniform(ref_obj.size / 2 + 2, size - ref_obj.size / 2 - 2)),
                 float(rng.uniform(ref_obj.size / 2 + 2, size - ref_obj.size / 2 - 2)))
        if math.hypot(place[0] - obj.center[0], place[1] - obj.center[1]) > (obj.size + ref_obj.size) / 2 + 4:
            break
    else:
        return None
    pasted = dataclasses.replace(ref_obj, center=place)
    answer = synthetic.render_scene(dataclasses.replace(scene, objects=(obj, pasted)))
    target = answer.objects[1]
    dx, dy = int(round(place[0] - ref_obj.center[0])), int(round(place[1] - ref_obj.center[1]))
    return Case(mode, seed, rendered.image, ref_rendered.objects[0].mask, ref_obj.color,
                (ref_obj.center[0] + dx, ref_obj.center[1] + dy), target.mask, _dilate(target.mask, 3),
                {"dx": dx, "dy": dy}, ref_rendered.image, ref_rendered.objects[0].mask, answer.image)


def _inside(obj, size: int, margin: float = 1.0) -> bool:
    r = obj.size / 2 + margin
    return r <= obj.center[0] <= size - r and r <= obj.center[1] <= size - r


def _dilate(mask: np.ndarray, px: int) -> np.ndarray:
    from scipy import ndimage

    return ndimage.binary_dilation(mask, iterations=px)


# ------------------------------------------------------------------------------------------ scoring


def find_object(image: np.ndarray, color, tolerance: float = COLOR_TOLERANCE) -> Optional[np.ndarray]:
    """The largest connected region of pixels within ``tolerance`` (RGB distance) of ``color``."""
    from scipy import ndimage

    close = np.linalg.norm(image - np.asarray(color, dtype=np.float32), axis=-1) < tolerance
    labels, n = ndimage.label(close)
    if n == 0:
        return None
    sizes = ndimage.sum(close, labels, index=range(1, n + 1))
    return labels == (1 + int(np.argmax(sizes)))


def centre_of(mask: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(mask)
    return float(xs.mean() + 0.5), float(ys.mean() + 0.5)


def psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    mse = float(((a - b) ** 2)[where].mean())
    return 99.0 if mse == 0 else 10 * math.log10(1.0 / mse)


def score(case: Case, result: np.ndarray) -> dict:
    keep = ~case.edit_region
    out = {"background_psnr": psnr(result, case.image, keep)}
    if case.mode == "appearance":
        inside = result[case.object_mask].mean(axis=0)
        out["color_error"] = float(np.linalg.norm(inside - np.asarray(case.color)))
        found = find_object(result, case.color)
        out["identity_iou"] = _iou(found, case.expected_mask)
        out["success"] = out["color_error"] < 0.15
        return out
    found = find_object(result, case.color)
    if found is None:
        return {**out, "success": False, "centre_error": float("inf"), "identity_iou": 0.0}
    cx, cy = centre_of(found)
    err = math.hypot(cx - case.expected_center[0], cy - case.expected_center[1])
    out.update(centre_error=err, identity_iou=_iou(found, case.expected_mask), success=err <= 2.0)
    return out


def _iou(a: Optional[np.ndarray], b: np.ndarray) -> float:
    if a is None:
        return 0.0
    return float((a & b).sum() / max(1, (a | b).sum()))


# ------------------------------------------------------------------------------------------ running


class Editor:
    """Runs cases through the pack's nodes on the demo model, inverting each image once."""

    def __init__(self, steps: int, cfg: Optional[float] = None, pack=None):
        """``pack``: the pack module when ComfyUI is already set up in this process (the tests' smoke run)."""
        if pack is None:
            from dragon_dev.bootstrap import in_process_pack

            pack = in_process_pack(cpu=True)
        self.pack = pack
        import nodes as comfy_nodes
        import torch

        self.torch = torch
        self.comfy_nodes = comfy_nodes
        self.nodes = self.pack.NODE_CLASS_MAPPINGS
        with torch.inference_mode():
            self.model, self.vae, self.positive, self.negative, _ = self.nodes["DragonDemoModel"]().load("two objects")["result"]
        self.steps = steps
        self.cfg = cfg
        self._banks: dict = {}

    def image(self, array: np.ndarray):
        return self.torch.from_numpy(np.ascontiguousarray(array)).float()[None]

    def bank(self, array: np.ndarray, end: Optional[str] = None):
        key = (array.tobytes(), end)
        if key not in self._banks:
            with self.torch.inference_mode():
                (latent,) = self.comfy_nodes.VAEEncode().encode(self.vae, self.image(array))
                ends = {} if end is None else {"inversion_end": end}
                self._banks[key] = self.nodes["DragonDDIMInversion"]().invert(
                    self.model, latent, self.positive, self.steps, **ends)["result"][0]
        return self._banks[key]

    def round_trip(self, array: np.ndarray) -> np.ndarray:
        """``array`` encoded and decoded by the demo model's autoencoder (no diffusion)."""
        with self.torch.inference_mode():
            (latent,) = self.comfy_nodes.VAEEncode().encode(self.vae, self.image(array))
            (decoded,) = self.comfy_nodes.VAEDecode().decode(self.vae, latent)
        return decoded[0].clamp(0, 1).cpu().numpy()

    def edit(self, case: Case, variant: dict) -> np.ndarray:
        torch, n = self.torch, self.nodes
        image = self.image(case.image)
        mask = torch.from_numpy(case.object_mask).float()[None]
        p = case.params
        variant = dict(variant)
        end = variant.pop("inversion_end", None)
        with torch.inference_mode():
            bank = self.bank(case.image, end)
            if case.mode in ("move", "resize"):
                (edit,) = n["DragonEditMove"]().build(image, p["dx"], p["dy"], p.get("scale", 1.0), "{}", mask)
            elif case.mode == "drag":
                region = torch.from_numpy(case.edit_region).float()[None]
                (edit,) = n["DragonEditDrag"]().build(image, json.dumps({"points": p["points"]}), region)
            else:
                ref_bank = self.bank(case.reference_image, end)
                ref_image = self.image(case.reference_image)
                ref_mask = torch.from_numpy(case.reference_mask).float()[None]
                if case.mode == "appearance":
                    (edit,) = n["DragonEditAppearance"]().build(image, ref_image, ref_bank, ref_mask, "{}", mask)
                else:
                    (edit,) = n["DragonEditPaste"]().build(image, ref_image, ref_bank, ref_mask, p["dx"], p["dy"], 1.0)
            options = dict(self.pack.nodes.sampling_nodes.guidance_option_defaults(), **variant)
            cfg = options.pop("cfg", self.cfg if self.cfg is not None else (5.0 if case.mode == "appearance" else 4.0))
            (latent,) = n["DragonSampler"]().sample(self.model, self.positive, self.negative, bank, edit, 0, cfg,
                                                    options)
            (decoded,) = self.comfy_nodes.VAEDecode().decode(self.vae, latent)
        return decoded[0].clamp(0, 1).cpu().numpy()


def run(cases: list[Case], steps: int, variants=VARIANTS, ceiling: bool = True) -> tuple[dict, list]:
    editor = Editor(steps)
    rows, results = {}, []
    if ceiling:  # what a perfect edit would score once through the demo autoencoder
        for case in cases:
            rows.setdefault((case.mode, CEILING), []).append(score(case, editor.round_trip(case.expected_image)))
    for variant_name, variant in variants.items():
        for case in cases:
            result = editor.edit(case, variant)
            s = score(case, result)
            rows.setdefault((case.mode, variant_name), []).append(s)
            results.append((case, variant_name, result, s))
    table = {f"{mode} / {variant}": summarise(scores) for (mode, variant), scores in rows.items()}
    return table, results


def summarise(scores: list[dict]) -> dict:
    return {"n": len(scores),
            "success": round(float(np.mean([s["success"] for s in scores])), 3),
            "identity_iou": round(float(np.mean([s["identity_iou"] for s in scores])), 3),
            "background_psnr": round(float(np.mean([s["background_psnr"] for s in scores])), 2)}


def contact_sheet(results: list, path: Path, zoom: int = 3) -> None:
    """One row per case (the first variant run: the full method by default): original | requested edit | result."""
    from PIL import Image, ImageDraw

    if not results:
        return
    rows = [r for r in results if r[1] == results[0][1]]
    cell = 64 * zoom
    sheet = Image.new("RGB", (3 * cell + 16, len(rows) * (cell + 8)), (255, 255, 255))
    for k, (case, _, result, s) in enumerate(rows):
        before = Image.fromarray((case.image * 255).astype(np.uint8)).resize((cell, cell), Image.NEAREST)
        spec = before.copy()
        draw = ImageDraw.Draw(spec, "RGBA")
        region = Image.fromarray((case.expected_mask * 90).astype(np.uint8)).resize((cell, cell), Image.NEAREST)
        spec.paste(Image.new("RGB", (cell, cell), (255, 255, 255)), (0, 0), region)
        ex, ey = case.expected_center
        draw.ellipse([ex * zoom - 4, ey * zoom - 4, ex * zoom + 4, ey * zoom + 4], outline=(255, 0, 0, 255), width=2)
        draw.text((3, 3), f"{case.mode} {'ok' if s['success'] else 'MISS'}", fill=(255, 255, 255, 255))
        after = Image.fromarray((result * 255).astype(np.uint8)).resize((cell, cell), Image.NEAREST)
        y = k * (cell + 8)
        for j, im in enumerate((before, spec, after)):
            sheet.paste(im, (j * (cell + 8), y))
    sheet.save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenes", type=int, default=10, help="scenes per mode")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--out", default="out/quality")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    cases = make_cases(args.scenes, args.modes.split(","))
    table, results = run(cases, args.steps, {k: VARIANTS[k] for k in args.variants.split(",")})
    print(f"{'mode / variant':46s} {'n':>3s} {'success':>8s} {'IoU':>6s} {'bg PSNR':>8s}")
    for name, row in table.items():
        print(f"{name:46s} {row['n']:3d} {row['success']:8.2f} {row['identity_iou']:6.2f} {row['background_psnr']:8.2f}")
    print(f"targets: success >= {TARGETS['success_move_drag']} (move, drag), background PSNR >= "
          f"{TARGETS['background_psnr']} dB, identity IoU >= {TARGETS['identity_iou']}")
    print(f"{len(results)} edits in {time.perf_counter() - started:.0f} s")
    (out / "quality.json").write_text(json.dumps(table, indent=2))
    per_case = [{"mode": case.mode, "seed": case.seed, "variant": variant, **{k: v for k, v in s.items()
                 if isinstance(v, (bool, int, float))}} for case, variant, _, s in results]
    (out / "cases.json").write_text(json.dumps(per_case, indent=1))
    contact_sheet(results, out / "contact_sheet.png")
    print(f"wrote {out / 'quality.json'}, {out / 'cases.json'} (per edit) and {out / 'contact_sheet.png'}")


if __name__ == "__main__":
    main()
