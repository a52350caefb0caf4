// The editor's state: what editor_json holds (points, boxes, brush dabs in ORIGINAL image pixels), how it is
// read and written, and the per-node kinds of editor. No DOM and no ComfyUI here.

// The edit nodes' limits on editor_json: the same numbers as dragon_core/editor_json.py (EDITOR_JSON_MAX_CHARS,
// EDITOR_MAX_POINTS, EDITOR_MAX_BOXES, EDITOR_MAX_STROKES, EDITOR_MAX_COORDINATE, EDITOR_MAX_BRUSH_PIXELS);
// tests/e2e/test_editor_limits.py reads both files and checks that they agree. The editor refuses a gesture
// whose result the node would refuse (limitProblem), and says so in its status line.
export const LIMITS = { chars: 65536, points: 256, boxes: 64, strokes: 20000, coordinate: 1e6, brushPixels: 2 ** 31 };

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
      if (row.some((v) => Math.abs(v) > LIMITS.coordinate)) {
        return { error: `editor_json.${key}: numbers must be within ±${sci(LIMITS.coordinate)}` };
      }
      state[key].push(row.slice());
    }
  }
  return { state };
}

/** A brush dab as it is saved: whole pixels, radius at least 1, paint 1 or erase 0. */
export const savedDab = ([x, y, r, paint]) => [Math.round(x), Math.round(y), Math.max(1, Math.round(r)), paint ? 1 : 0];

/** Compact text of a state: points with 1 decimal, boxes and brush dabs in whole pixels. */
export function serializeState(state) {
  return JSON.stringify({
    version: 1,
    points: state.points.map((p) => p.map(round1)),
    boxes: state.boxes.map((b) => b.map(Math.round)),
    strokes: state.strokes.map(savedDab),
  });
}

/** The node's work for one saved dab on a w x h image: the pixels of its bounding square inside the image
 * (dragon_core/editor_json.py _dab_window; Math.trunc is Python's int()). */
export function dabPixels([x, y, r], [w, h]) {
  const y0 = Math.max(0, Math.trunc(y - r)), y1 = Math.min(h, Math.trunc(y + r) + 1);
  const x0 = Math.max(0, Math.trunc(x - r)), x1 = Math.min(w, Math.trunc(x + r) + 1);
  return Math.max(0, y1 - y0) * Math.max(0, x1 - x0);
}

/** dabPixels of every dab as saved, summed (dragon_core/editor_json.py brush_pixels). */
export function brushPixels(strokes, size) {
  let total = 0;
  for (const dab of strokes) total += dabPixels(savedDab(dab), size);
  return total;
}

/** 1e6, 2.15e9: numbers in messages. */
export const sci = (v, digits) => v.toExponential(digits).replace("e+", "e");

const BRUSH_ADVICE = "use a box, a smaller brush or fewer dabs, or Clear";

/** Why the edit node would refuse this state as editor_json (a limit it checks), or null when it would not.
 * `size` ([w, h] of the image) may be null: then the checks that need it are left out. */
export function limitProblem(state, size) {
  const text = serializeState(state);
  if (text.length > LIMITS.chars) return `Too much for editor_json (at most ${LIMITS.chars} characters): ${BRUSH_ADVICE}.`;
  for (const [key, max, what] of [["points", LIMITS.points, "pairs"], ["boxes", LIMITS.boxes, "boxes"], ["strokes", LIMITS.strokes, "brush dabs"]]) {
    if (state[key].length > max) return `At most ${max} ${what}.`;
  }
  const saved = JSON.parse(text);
  if (["points", "boxes", "strokes"].some((key) => saved[key].some((row) => row.some((v) => Math.abs(v) > LIMITS.coordinate)))) {
    return `Coordinates must be within ±${sci(LIMITS.coordinate)} pixels.`;
  }
  if (!size) return null;
  const longest = Math.max(size[0], size[1]);
  if (saved.strokes.some(([, , r]) => r > longest)) return `The brush radius can be at most the image's size (${longest} px).`;
  const work = brushPixels(saved.strokes, size);
  if (work > LIMITS.brushPixels) {
    return `Too much brushing for the node: ${saved.strokes.length} dabs cover ${sci(work, 2)} pixels ` +
      `(dab squares summed; at most ${sci(LIMITS.brushPixels, 2)}): ${BRUSH_ADVICE}.`;
  }
  return null;
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
  for (const stroke of strokes.slice(start)) {
    const dab = savedDab(stroke);
    if (prev && prev.every((v, i) => v === dab[i])) continue;
    kept.push(dab);
    prev = dab;
  }
  return kept;
}
