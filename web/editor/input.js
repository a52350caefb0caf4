// Gestures on the editor: pointer events on its <canvas> (points, brush, boxes, Move's arrow, Paste's
// outline), the context menu (delete what is under the pointer) and keyboard shortcuts while the editor has
// focus. Each gesture ends in ed.commit(), which writes the widgets and records one undo step.

import { LIMITS, brushPixels, clamp, compactStrokes, dabPixels, round1, savedDab, sci } from "./state.js";
import { paintMaskDab, HANDLE_RADIUS } from "./drawing.js";
import { MODE_KEYS } from "./toolbar.js";

const { app } = window.comfyAPI.app;

const HIT_RADIUS = HANDLE_RADIUS + 2; // CSS px
const OFFSET_LIMIT = 16384; // the dx/dy widgets' range (nodes/edit_nodes.py)

/** Pointer event -> {css: [x, y] in canvas CSS px, img: [x, y] in image px (unclamped)}. */
function locate(ed, e) {
  const rect = ed.canvas.getBoundingClientRect();
  const { cssW, cssH, s, ox, oy } = ed.view;
  const x = (e.clientX - rect.left) * (cssW / (rect.width || 1));
  const y = (e.clientY - rect.top) * (cssH / (rect.height || 1));
  return { css: [x, y], img: [(x - ox) / s, (y - oy) / s] };
}

function inside(ed, [x, y]) {
  const [w, h] = ed.imageSize();
  return x >= 0 && y >= 0 && x < w && y < h;
}

function clampPoint(ed, [x, y]) {
  const [w, h] = ed.imageSize();
  return [clamp(round1(x), 0, w - 0.1), clamp(round1(y), 0, h - 0.1)];
}

function clampBoxCorner(ed, [x, y]) {
  const [w, h] = ed.imageSize();
  return [clamp(Math.round(x), 0, w), clamp(Math.round(y), 0, h)];
}

const near = (a, b) => (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2 <= HIT_RADIUS * HIT_RADIUS;

function hitPoint(ed, css) {
  let best = null;
  let bestD = HIT_RADIUS * HIT_RADIUS;
  const test = (x, y, pair, end) => {
    const [cx, cy] = ed.toCss(x, y);
    const d = (cx - css[0]) ** 2 + (cy - css[1]) ** 2;
    if (d <= bestD) {
      bestD = d;
      best = { pair, end };
    }
  };
  ed.state.points.forEach(([hx, hy, tx, ty], k) => {
    test(hx, hy, k, 0);
    test(tx, ty, k, 1);
  });
  if (ed.pending) test(ed.pending[0], ed.pending[1], -1, 0);
  return best;
}

function hitBox(ed, img) {
  for (let k = ed.state.boxes.length - 1; k >= 0; k--) {
    const [x, y, w, h] = ed.state.boxes[k];
    if (img[0] >= x && img[0] <= x + w && img[1] >= y && img[1] <= y + h) return k;
  }
  return -1;
}

function setOffset(ed, dx, dy) {
  ed.previewOffset({ dx: clamp(Math.round(dx), -OFFSET_LIMIT, OFFSET_LIMIT), dy: clamp(Math.round(dy), -OFFSET_LIMIT, OFFSET_LIMIT) });
}

/** Why one more dab would pass the node's limits on brush work (count, or dab squares summed), or null. */
function brushFull(ed, g, dab) {
  if (ed.state.strokes.length >= LIMITS.strokes) return `At most ${LIMITS.strokes} brush dabs: the stroke stops here (use a box, or Clear).`;
  if (g.pixels + dabPixels(savedDab(dab), ed.imageSize()) > LIMITS.brushPixels) {
    return `The node draws at most ${sci(LIMITS.brushPixels, 2)} pixels of dab squares: the stroke stops here ` +
      "(use a box, a smaller brush, or Clear).";
  }
  return null;
}

/** Add brush dabs along the pointer path: none closer than r/2 to the last one, gaps filled every r. The
 * stroke stops, with the reason in the status line, where one more dab would pass the node's limits. */
function addDab(ed, g, img) {
  const r = ed.brush || 1;
  const [w, h] = ed.imageSize();
  const p = [clamp(img[0], -r, w + r), clamp(img[1], -r, h + r)];
  const push = (x, y) => {
    if (g.full) return;
    const dab = [x, y, r, g.paint];
    g.full = brushFull(ed, g, dab);
    if (g.full) {
      ed.flash(g.full);
      return;
    }
    g.pixels += dabPixels(savedDab(dab), ed.imageSize());
    ed.state.strokes.push(dab);
    paintMaskDab(ed, dab);
  };
  if (!g.last) {
    push(p[0], p[1]);
    g.last = p;
    return;
  }
  const dist = Math.hypot(p[0] - g.last[0], p[1] - g.last[1]);
  if (dist < r / 2) return;
  const steps = Math.max(1, Math.ceil(dist / r));
  for (let k = 1; k <= steps; k++) {
    const t = k / steps;
    push(g.last[0] + (p[0] - g.last[0]) * t, g.last[1] + (p[1] - g.last[1]) * t);
  }
  g.last = p;
}

/** The gesture a left-button press starts in the current mode, or null. */
function startGesture(ed, e, at, snap) {
  const mode = ed.mode;
  if (mode === "points") {
    const hit = hitPoint(ed, at.css);
    if (hit) {
      ed.selected = hit.pair;
      return { type: "point", ...hit, snap };
    }
    if (!inside(ed, at.img)) return null;
    const p = clampPoint(ed, at.img);
    if (!ed.pending) {
      ed.pending = p;
      return { type: "point", pair: -1, end: 0, snap };
    }
    if (ed.state.points.length >= LIMITS.points) {
      ed.flash(`At most ${LIMITS.points} pairs.`);
      return null;
    }
    ed.state.points.push([...ed.pending, ...p]);
    ed.pending = null;
    ed.selected = ed.state.points.length - 1;
    return { type: "point", pair: ed.selected, end: 1, snap };
  }
  if (mode === "paint" || mode === "erase") {
    const g = { type: "brush", paint: mode === "paint" ? 1 : 0, snap, last: null, first: ed.state.strokes.length,
      pixels: brushPixels(ed.state.strokes, ed.imageSize()), full: null };
    addDab(ed, g, at.img);
    return g.full && ed.state.strokes.length === g.first ? null : g; // not even one dab fits: no stroke
  }
  if (mode === "box") {
    if (!inside(ed, at.img)) return null;
    // A new box replaces the boxes (one object, one box); Shift adds one to the union.
    const add = e.shiftKey;
    if (add && ed.state.boxes.length >= LIMITS.boxes) {
      ed.flash(`At most ${LIMITS.boxes} boxes.`);
      return null;
    }
    const p = clampBoxCorner(ed, at.img);
    return { type: "box", start: p, end: p, add, snap };
  }
  if (mode === "arrow") {
    const [dx, dy] = ed.offset();
    const origin = ed.arrowOrigin();
    const onTip = near(ed.toCss(origin[0] + dx, origin[1] + dy), at.css);
    return { type: "offset", start: at.img, base: onTip ? [dx, dy] : [0, 0], snap };
  }
  if (mode === "place") {
    const box = ed.paste?.box;
    if (!box) {
      ed.flash(ed.paste?.why ?? "No reference object to place.");
      return null;
    }
    const [dx, dy] = ed.offset();
    const scale = ed.scale();
    const [ocx, ocy] = [box[0] + box[2] / 2 + dx, box[1] + box[3] / 2 + dy];
    const corner = ed.toCss(ocx + (box[2] / 2) * scale, ocy + (box[3] / 2) * scale);
    if (near(corner, at.css)) return { type: "scale", centre: [ocx, ocy], half: [box[2] / 2, box[3] / 2], snap };
    return { type: "offset", start: at.img, base: [dx, dy], snap };
  }
  return null;
}

function onPointerDown(ed, e) {
  ed.refresh();
  if (e.button === 1) {
    // middle button pans the graph: the Vue node forwards it itself; the classic overlay needs a hand
    if (ed.inClassicOverlay()) app.canvas?.processMouseDown?.(e);
    return;
  }
  e.stopPropagation();
  ed.root.focus({ preventScroll: true }); // keyboard shortcuts go to this editor now
  if (e.button !== 0) return;
  if (!ed.image) {
    ed.flash("No image yet: connect one (the editor_json text box still works).");
    return;
  }
  if (ed.error) {
    ed.flash(ed.error);
    return;
  }
  const at = locate(ed, e);
  ed.hover = at.css;
  ed.gesture = startGesture(ed, e, at, ed.snapshot());
  if (ed.gesture) ed.canvas.setPointerCapture?.(e.pointerId);
  ed.updateToolbar();
  ed.requestRender();
}

function onPointerMove(ed, e) {
  if (e.buttons & 4) return; // middle-button panning
  e.stopPropagation();
  const at = locate(ed, e);
  ed.hover = at.css;
  const g = ed.gesture;
  if (g && ed.image) {
    if (g.type === "point") {
      const p = clampPoint(ed, at.img);
      if (g.pair < 0) ed.pending = p;
      else {
        const pair = ed.state.points[g.pair];
        pair[2 * g.end] = p[0];
        pair[2 * g.end + 1] = p[1];
      }
    } else if (g.type === "brush") {
      addDab(ed, g, at.img);
    } else if (g.type === "box") {
      g.end = clampBoxCorner(ed, at.img);
    } else if (g.type === "offset") {
      setOffset(ed, g.base[0] + at.img[0] - g.start[0], g.base[1] + at.img[1] - g.start[1]);
    } else if (g.type === "scale") {
      const sx = Math.abs(at.img[0] - g.centre[0]) / (g.half[0] || 1);
      const sy = Math.abs(at.img[1] - g.centre[1]) / (g.half[1] || 1);
      ed.previewOffset({ scale: clamp(Math.round(Math.max(sx, sy) * 100) / 100, 0.05, 20) });
    }
  }
  ed.requestRender();
}

function onPointerUp(ed, e) {
  if (e.button === 1) {
    if (ed.inClassicOverlay()) app.canvas?.processMouseUp?.(e);
    return;
  }
  e.stopPropagation();
  const g = ed.gesture;
  ed.gesture = null;
  if (!g) return;
  ed.canvas.releasePointerCapture?.(e.pointerId);
  if (e.type === "pointercancel") {
    ed.restore(g.snap);
    return;
  }
  if (g.type === "box") {
    const x0 = Math.min(g.start[0], g.end[0]), x1 = Math.max(g.start[0], g.end[0]);
    const y0 = Math.min(g.start[1], g.end[1]), y1 = Math.max(g.start[1], g.end[1]);
    if (x1 - x0 >= 1 && y1 - y0 >= 1) {
      if (!g.add) ed.state.boxes = [];
      ed.state.boxes.push([x0, y0, x1 - x0, y1 - y0]);
    }
  } else if (g.type === "brush") {
    ed.state.strokes = compactStrokes(ed.state.strokes, g.first);
  }
  const notice = g.type === "brush" ? g.full : null;
  ed.commit(g.snap);
  if (notice && !ed.notice) ed.flash(notice); // the stroke was cut short: keep saying why

}

function onContextMenu(ed, e) {
  e.preventDefault();
  e.stopPropagation();
  if (!ed.image || ed.error || !ed.spec.json) return;
  const at = locate(ed, e);
  const snap = ed.snapshot();
  const hit = ed.spec.modes.includes("points") ? hitPoint(ed, at.css) : null;
  if (hit) {
    if (hit.pair < 0) ed.pending = null;
    else {
      ed.state.points.splice(hit.pair, 1);
      ed.selected = -1;
    }
  } else {
    const k = hitBox(ed, at.img);
    if (k < 0) return;
    ed.state.boxes.splice(k, 1);
  }
  ed.commit(snap, { removal: true });
}

/** Keys while the editor has focus. Ctrl+Z / Ctrl+Y are left to ComfyUI (one undo history). */
function onKeyDown(ed, e) {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  ed.adoptSuccessor();
  const key = e.key;
  let handled = true;
  if (key === "Escape") {
    if (ed.gesture) {
      const g = ed.gesture;
      ed.gesture = null;
      ed.restore(g.snap);
    } else if (ed.pending) {
      ed.pending = null;
      ed.updateToolbar();
      ed.requestRender();
    } else handled = false;
  } else if (key === "Delete" || key === "Backspace") {
    if (ed.spec.modes.includes("points")) ed.runAction("delete");
    else ed.flash("Right-click a box to delete it; Clear removes everything.");
  } else if (MODE_KEYS[key.toLowerCase()] && ed.spec.modes.includes(MODE_KEYS[key.toLowerCase()])) {
    ed.setMode(MODE_KEYS[key.toLowerCase()]);
  } else handled = false;
  if (handled) {
    // keep the graph from acting on the same key (Delete would remove the node)
    e.preventDefault();
    e.stopPropagation();
  }
}

function onWheel(ed, e) {
  // Classic renderer: the editor floats above the graph canvas, so hand zooming over to it like ComfyUI's
  // own textarea does. Vue renderer: the node forwards wheel events itself.
  if (!ed.inClassicOverlay()) return;
  e.preventDefault();
  app.canvas?.processMouseWheel?.(e);
}

/** Wire the editor's DOM events. */
export function attachInput(ed) {
  const c = ed.canvas;
  c.addEventListener("pointerdown", (e) => onPointerDown(ed, e));
  c.addEventListener("pointermove", (e) => onPointerMove(ed, e));
  c.addEventListener("pointerup", (e) => onPointerUp(ed, e));
  c.addEventListener("pointercancel", (e) => onPointerUp(ed, e));
  c.addEventListener("pointerleave", () => {
    ed.hover = null;
    ed.requestRender();
  });
  c.addEventListener("contextmenu", (e) => onContextMenu(ed, e));
  c.addEventListener("dblclick", (e) => e.stopPropagation());
  c.addEventListener("wheel", (e) => onWheel(ed, e), { passive: false });
  ed.root.addEventListener("keydown", (e) => onKeyDown(ed, e));
  // the editor re-reads its sources when the pointer comes back (a change without any front-end event)
  ed.root.addEventListener("pointerenter", () => ed.refresh());
}
