// The editor's state: what editor_json holds (points, boxes, brush dabs in ORIGINAL image pixels), how it is
// read and written, and the per-node kinds of editor. No DOM and no ComfyUI here.

// Backend limits (dragon_core/editor_json.py: parse_editor_json).
export const LIMITS = { chars: 65536, points: 256, boxes: 64, strokes: 20000 };

// One entry per node class that gets an editor. `modes` are its tools (the first is the default); `json`
// says whether the node has an editor_json widget; `offset` whether it has dx/dy/scale widgets.
export const KINDS = {
  DragonEditDrag: { modes: ["points", "paint", "erase"], region: "editable region", tint: [64, 200, 255], json: true },
  DragonEditMove: { modes: ["box", "paint", "erase", "arrow"], region: "object", tint: [255, 168, 40], json: true, offset: true },
  DragonEditAppearance: { modes: ["box", "paint", "erase"], region: "base object", tint: [200, 110, 255], json: true },
  DragonEditPaste: { modes: ["place"], region: "pasted object", tint: [90, 220, 120], json: false, offset: true },
};

export const round1 = (v) => Math.round(v * 10) / 10;
export const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
export const emptyState = () => ({ points: [], boxes: [], strokes: [] });

/** Parse editor_json text like the backend does (lenient about missing keys). {state} or {error}. */
export function parseEditorJson(text) {
  if (typeof text !== "string") return { error: "editor_json is not text" };
  if (text.length > LIMITS.chars) return { error: `editor_json is longer than ${LIMITS.chars} characters` };
  const trimmed = text.trim();
  if (!trimmed) return { state: emptyState() };
  let data;
  try {
    data = JSON.parse(trimmed);
  } catch {
    return { error: "editor_json is not valid JSON: fix it by hand or press Clear" };
  }
  if (Array.isArray(data)) data = { points: data };
  if (!data || typeof data !== "object") return { error: "editor_json must be a JSON object" };
  const state = emptyState();
  for (const [key, max] of [["points", LIMITS.points], ["boxes", LIMITS.boxes], ["strokes", LIMITS.strokes]]) {
    const rows = data[key] ?? [];
    if (!Array.isArray(rows)) return { error: `editor_json.${key} must be a list` };
    if (rows.length > max) return { error: `editor_json.${key} has more than ${max} entries` };
    for (const row of rows) {
      if (!Array.isArray(row) || row.length !== 4 || !row.every((v) => typeof v === "number" && Number.isFinite(v))) {
        return { error: `editor_json.${key} rows must be lists of 4 finite numbers` };
      }
      state[key].push(row.slice());
    }
  }
  return { state };
}

/** Compact text of a state: points with 1 decimal, boxes and brush dabs in whole pixels. */
export function serializeState(state) {
  return JSON.stringify({
    version: 1,
    points: state.points.map((p) => p.map(round1)),
    boxes: state.boxes.map((b) => b.map(Math.round)),
    strokes: state.strokes.map(([x, y, r, paint]) => [Math.round(x), Math.round(y), Math.max(1, Math.round(r)), paint ? 1 : 0]),
  });
}

/** The bounds [x, y, w, h] of the boxed and painted region inside a w x h image, or null when there is none. */
export function regionBounds(state, [w, h]) {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const [x, y, bw, bh] of state.boxes) {
    x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x + bw); y1 = Math.max(y1, y + bh);
  }
  for (const [x, y, r, paint] of state.strokes) {
    if (!paint) continue;
    x0 = Math.min(x0, x - r); y0 = Math.min(y0, y - r); x1 = Math.max(x1, x + r); y1 = Math.max(y1, y + r);
  }
  if (!Number.isFinite(x0)) return null;
  x0 = clamp(x0, 0, w); x1 = clamp(x1, 0, w); y0 = clamp(y0, 0, h); y1 = clamp(y1, 0, h);
  return [x0, y0, x1 - x0, y1 - y0];
}

/** A warning when saved points/boxes do not fit a w x h image (the backend would refuse them), else null. */
export function outsideWarning(state, [w, h]) {
  const out = (x, y) => !(x >= 0 && y >= 0 && x < w && y < h);
  const points = state.points.filter(([hx, hy, tx, ty]) => out(hx, hy) || out(tx, ty)).length;
  const boxes = state.boxes.filter(([x, y, bw, bh]) => x < 0 || y < 0 || x + bw > w || y + bh > h).length;
  if (!points && !boxes) return null;
  return `${points ? `${points} pair(s)` : ""}${points && boxes ? " and " : ""}${boxes ? `${boxes} box(es)` : ""} ` +
    `outside this ${w}×${h} image: move or delete them`;
}

/** Brush dabs of one stroke (from index `start`) rounded to whole pixels, repeats dropped (what is saved). */
export function compactStrokes(strokes, start) {
  const kept = strokes.slice(0, start);
  let prev = kept[kept.length - 1] ?? null;
  for (const [x, y, r, paint] of strokes.slice(start)) {
    const dab = [Math.round(x), Math.round(y), Math.max(1, Math.round(r)), paint];
    if (prev && prev.every((v, i) => v === dab[i])) continue;
    kept.push(dab);
    prev = dab;
  }
  return kept;
}
