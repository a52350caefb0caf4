// DragonDiffusion on-node editor for ComfyUI's front end (1.32+), classic and Vue ("Nodes 2.0") renderers.
//
// DragonEditDrag / DragonEditMove / DragonEditAppearance get a DOM widget (a <canvas> with pointer events) that
// shows the image of the node's `image` input and edits the node's `editor_json` widget: handle -> target
// points, object boxes and a painted mask, all in pixels of the ORIGINAL image (docs/ARCHITECTURE.md). The
// widget value is the only state: it survives workflow save/load, copy/paste and sharing, and the editor
// re-reads it whenever it changes (load, paste, hand edits, ComfyUI's undo).
// Nothing is drawn on the LiteGraph canvas and no node mouse handler is used, so both renderers work.
// DragonDDIMInversion gets a small text widget with the memory bank size its run reports (ui.text).
// All text reaching the DOM goes through textContent; user data is only drawn on the editor's <canvas>.

const { app } = window.comfyAPI.app;
const { api } = window.comfyAPI.api;

const EXTENSION_NAME = "DragonDiffusion.Editor";
const EDITOR_WIDGET = "dragon_editor";
const BANK_WIDGET = "dragon_bank_info";

// Backend limits (dragon_core/edit_spec.py: parse_editor_json).
const LIMITS = { chars: 65536, points: 256, boxes: 64, strokes: 20000 };

const KINDS = {
  DragonEditDrag: {
    modes: ["points", "paint", "erase"],
    region: "editable region",
    tint: [64, 200, 255],
  },
  DragonEditMove: {
    modes: ["box", "paint", "erase", "arrow"],
    region: "object",
    tint: [255, 168, 40],
  },
  DragonEditAppearance: {
    modes: ["box", "paint", "erase"],
    region: "base object",
    tint: [200, 110, 255],
  },
};

const MODE_LABELS = {
  points: ["Points", "Click a handle, then its target. Drag a point to move it; right-click it to delete its pair."],
  paint: ["Brush", "Paint the %s (radius r in image pixels)."],
  erase: ["Eraser", "Erase from the %s."],
  box: ["Box", "Drag to draw the %s's box. Right-click a box to delete it."],
  arrow: ["Arrow", "Drag from the object to its new place: sets dx and dy."],
};

const POLL_MS = 350;
const UNDO_DEPTH = 100;
const HIT_RADIUS = 11; // CSS px
const editors = new Set();

// ------------------------------------------------------------------------------------------ small helpers

const round1 = (v) => Math.round(v * 10) / 10;
const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
const emptyState = () => ({ points: [], boxes: [], strokes: [] });

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

function ensureStylesheet() {
  const id = "dragon-editor-css";
  if (document.getElementById(id)) return;
  const link = document.createElement("link");
  link.id = id;
  link.rel = "stylesheet";
  link.href = new URL("./dragon_editor.css", import.meta.url).href;
  document.head.appendChild(link);
}

/** Parse editor_json text like the backend does (lenient about missing keys). {state} or {error}. */
function parseEditorJson(text) {
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
function serializeState(state) {
  return JSON.stringify({
    version: 1,
    points: state.points.map((p) => p.map(round1)),
    boxes: state.boxes.map((b) => b.map(Math.round)),
    strokes: state.strokes.map(([x, y, r, paint]) => [Math.round(x), Math.round(y), Math.max(1, Math.round(r)), paint ? 1 : 0]),
  });
}

/** Annotated LoadImage value ("sub/dir/name.png [input]") -> /view parameters. */
function parseAnnotatedPath(value) {
  let path = String(value).trim();
  let type = "input";
  const match = /\s*\[(input|output|temp)\]$/i.exec(path);
  if (match) {
    type = match[1].toLowerCase();
    path = path.slice(0, match.index);
  }
  const cut = path.lastIndexOf("/");
  return { filename: path.slice(cut + 1), subfolder: cut >= 0 ? path.slice(0, cut) : "", type };
}

function viewUrl(item) {
  const params = new URLSearchParams({
    filename: item.filename ?? "",
    type: item.type || "output",
    subfolder: item.subfolder ?? "",
  });
  return api.apiURL(`/view?${params}`);
}

function nodeLocatorId(node) {
  const graph = node.graph;
  if (!graph || graph === app.graph || graph.isRootGraph || !graph.id) return String(node.id);
  return `${graph.id}:${node.id}`; // a node inside a subgraph
}

/** The node feeding `image`, through frontend Reroute nodes. */
function upstreamImageNode(node) {
  let current = node;
  let slot = node.inputs?.findIndex((input) => input.name === "image") ?? -1;
  for (let depth = 0; depth < 32 && slot >= 0; depth++) {
    if (current.inputs?.[slot]?.link == null) return null;
    const up = current.getInputNode(slot);
    if (!up) return null;
    if (up.type !== "Reroute") return up;
    current = up;
    slot = 0;
  }
  return null;
}

/** {url, what} of the image to show for `up`, or {url: null, why}. No queueing needed for LoadImage. */
function imageSourceOf(up) {
  const fileWidget = up.widgets?.find((w) => w.name === "image" && w.type === "combo");
  if (fileWidget && typeof fileWidget.value === "string" && fileWidget.value.trim()) {
    return { url: viewUrl(parseAnnotatedPath(fileWidget.value)) };
  }
  const outputs = app.nodeOutputs?.[nodeLocatorId(up)];
  const item = outputs?.images?.[0];
  if (item?.filename) return { url: viewUrl(item) };
  const src = up.imgs?.[0]?.src;
  if (src) return { url: src };
  const title = up.title || up.type || "the connected node";
  return { url: null, why: [`“${title}” has no preview yet.`, "Run the workflow once, or connect Load Image."] };
}

// ------------------------------------------------------------------------------------------ the editor

class DragonEditor {
  constructor(node) {
    this.node = node;
    this.kind = node.comfyClass || node.type;
    this.spec = KINDS[this.kind];
    this.mode = this.spec.modes[0];
    this.state = emptyState();
    this.pending = null; // [x, y] handle waiting for its target (drag node)
    this.selected = -1; // index of the selected pair
    this.undoStack = [];
    this.error = null; // message when editor_json cannot be read
    this.lastText = undefined;
    this.lastWidgetSig = "";
    this.brush = null; // radius in image px; set from the image size on first load
    this.image = null; // HTMLImageElement when ready
    this.imageUrl = null;
    this.imageStatus = "none"; // none | loading | ready | error
    this.placeholder = ["No image to show.", "Connect Load Image to “image”;", "the editor_json text box still works."];
    this.gesture = null;
    this.hover = null; // pointer position in CSS px of the canvas
    this.notice = null;
    this.noticeTimer = 0;
    this.view = { s: 1, ox: 0, oy: 0, cssW: 0, cssH: 0 };
    this.mask = document.createElement("canvas");
    this.maskDirty = true;
    this.frame = 0;
    this.buildDom();
  }

  // -- DOM -----------------------------------------------------------------------------------------------
  buildDom() {
    ensureStylesheet();
    const root = el("div", "dragon-editor widget-expands");
    root.dataset.dragonNodeId = String(this.node.id);
    root.dataset.dragonKind = this.kind;
    const bar = el("div", "dragon-editor-toolbar");
    this.modeButtons = {};
    for (const mode of this.spec.modes) {
      const [label, tip] = MODE_LABELS[mode];
      const button = el("button", "dragon-editor-button", label);
      button.type = "button";
      button.dataset.mode = mode;
      button.title = tip.replace("%s", this.spec.region);
      button.addEventListener("click", () => this.setMode(mode));
      bar.appendChild(button);
      this.modeButtons[mode] = button;
    }
    const size = el("label", "dragon-editor-size");
    size.title = "Brush radius in image pixels";
    size.appendChild(el("span", null, "r"));
    this.sizeInput = document.createElement("input");
    this.sizeInput.type = "range";
    this.sizeInput.min = "1";
    this.sizeInput.max = "64";
    this.sizeInput.step = "1";
    this.sizeInput.value = "8";
    this.sizeInput.setAttribute("aria-label", "Brush radius in image pixels");
    this.sizeValue = el("span", "dragon-editor-size-value", "8");
    this.sizeInput.addEventListener("input", () => {
      this.brush = Number(this.sizeInput.value);
      this.sizeValue.textContent = String(this.brush);
      this.requestRender();
    });
    size.append(this.sizeInput, this.sizeValue);
    bar.appendChild(size);
    const actions = [["undo", "Undo", "Undo the last action"], ["clear", "Clear", "Remove all points, boxes and painting"]];
    if (this.spec.modes.includes("points")) actions.splice(1, 0, ["delete", "Delete pair", "Delete the selected (or last) handle/target pair"]);
    this.actionButtons = {};
    for (const [action, label, tip] of actions) {
      const button = el("button", "dragon-editor-button dragon-editor-action", label);
      button.type = "button";
      button.dataset.action = action;
      button.title = tip;
      button.addEventListener("click", () => this.runAction(action));
      bar.appendChild(button);
      this.actionButtons[action] = button;
    }
    const stage = el("div", "dragon-editor-stage");
    const canvas = document.createElement("canvas");
    canvas.className = "dragon-editor-canvas";
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", "DragonDiffusion edit canvas");
    stage.appendChild(canvas);
    const status = el("div", "dragon-editor-status");
    this.hintEl = el("span", "dragon-editor-hint");
    this.infoEl = el("span", "dragon-editor-info");
    status.append(this.hintEl, this.infoEl);
    root.append(bar, stage, status);
    this.root = root;
    this.stage = stage;
    this.canvas = canvas;

    // The toolbar and canvas own their pointer events: keep them from dragging the node (Vue renderer).
    for (const type of ["pointerdown", "pointermove", "pointerup", "dblclick"]) {
      bar.addEventListener(type, (e) => e.stopPropagation());
    }
    canvas.addEventListener("pointerdown", (e) => this.onPointerDown(e));
    canvas.addEventListener("pointermove", (e) => this.onPointerMove(e));
    canvas.addEventListener("pointerup", (e) => this.onPointerUp(e));
    canvas.addEventListener("pointercancel", (e) => this.onPointerUp(e));
    canvas.addEventListener("pointerleave", () => {
      this.hover = null;
      this.requestRender();
    });
    canvas.addEventListener("contextmenu", (e) => this.onContextMenu(e));
    canvas.addEventListener("dblclick", (e) => e.stopPropagation());
    canvas.addEventListener("wheel", (e) => this.onWheel(e), { passive: false });
    this.resizeObserver = new ResizeObserver(() => this.requestRender());
    this.resizeObserver.observe(stage);
    this.updateToolbar();
  }

  inClassicOverlay() {
    return !this.root.closest("[data-node-id]"); // Vue nodes carry data-node-id; classic DOM widgets float over the canvas
  }

  onWheel(e) {
    // Classic renderer: the editor floats above the graph canvas, so hand zooming over to it like ComfyUI's
    // own textarea does. Vue renderer: the node forwards wheel events itself.
    if (!this.inClassicOverlay()) return;
    e.preventDefault();
    app.canvas?.processMouseWheel?.(e);
  }

  // -- widgets -------------------------------------------------------------------------------------------
  widget(name) {
    return this.node.widgets?.find((w) => w.name === name);
  }

  setWidgetValue(name, value) {
    const w = this.widget(name);
    if (!w || w.value === value) return;
    w.value = value;
    w.callback?.(value); // keeps the Vue renderer's copy of the value in step
  }

  /** Re-read editor_json (and move widgets) if they changed outside the editor. */
  syncFromWidgets() {
    const w = this.widget("editor_json");
    const text = w ? w.value : "";
    if (text !== this.lastText) {
      // Changed outside the editor (workflow load, paste, hand edit): undo must not bring older states
      // back over it.
      if (this.lastText !== undefined) this.undoStack.length = 0;
      this.lastText = text;
      this.pending = null;
      this.gesture = null;
      const parsed = parseEditorJson(text);
      if (parsed.error) {
        this.error = parsed.error;
      } else {
        this.error = null;
        this.state = parsed.state;
        if (this.selected >= this.state.points.length) this.selected = -1;
      }
      this.maskDirty = true;
      this.updateToolbar();
      this.requestRender();
    }
    if (this.kind === "DragonEditMove") {
      const sig = ["dx", "dy", "scale"].map((n) => this.widget(n)?.value).join(",");
      if (sig !== this.lastWidgetSig) {
        this.lastWidgetSig = sig;
        this.updateToolbar();
        this.requestRender();
      }
    }
  }

  writeState() {
    const text = serializeState(this.state);
    this.lastText = text;
    this.setWidgetValue("editor_json", text);
    this.node.setDirtyCanvas?.(true, true);
    return text;
  }

  offset() {
    return [Number(this.widget("dx")?.value) || 0, Number(this.widget("dy")?.value) || 0];
  }

  // -- undo ----------------------------------------------------------------------------------------------
  /** What undo needs: the state as its (lossless: values are rounded when made) compact text. */
  snapshot() {
    return {
      text: serializeState(this.state),
      pending: this.pending ? this.pending.slice() : null,
      offset: this.kind === "DragonEditMove" ? this.offset() : null,
    };
  }

  pushUndo(snap) {
    this.undoStack.push(snap);
    if (this.undoStack.length > UNDO_DEPTH) this.undoStack.shift();
    this.updateToolbar();
  }

  /** Finish an action that started from `snap`: write the widget if anything changed, else forget it. */
  commit(snap) {
    const text = serializeState(this.state);
    if (text.length > LIMITS.chars || this.state.strokes.length > LIMITS.strokes) {
      this.restore(snap);
      this.flash(`Too much painting for editor_json (${LIMITS.chars} characters): use a larger brush or a box.`);
      return;
    }
    const offsetChanged = snap.offset && String(snap.offset) !== String(this.offset());
    const pendingChanged = String(snap.pending) !== String(this.pending);
    if (text !== snap.text || offsetChanged || pendingChanged) this.pushUndo(snap);
    if (text !== this.lastText) this.writeState();
    this.maskDirty = true;
    this.updateToolbar();
    this.requestRender();
  }

  restore(snap) {
    this.state = parseEditorJson(snap.text).state;
    this.pending = snap.pending ? snap.pending.slice() : null;
    if (snap.offset) {
      this.setWidgetValue("dx", snap.offset[0]);
      this.setWidgetValue("dy", snap.offset[1]);
    }
    if (this.selected >= this.state.points.length) this.selected = -1;
    this.writeState();
    this.maskDirty = true;
    this.updateToolbar();
    this.requestRender();
  }

  runAction(action) {
    if (action === "undo") {
      const snap = this.undoStack.pop();
      if (snap) this.restore(snap);
      else this.flash("Nothing to undo.");
      return;
    }
    if (this.error && action !== "clear") {
      this.flash(this.error);
      return;
    }
    const snap = this.snapshot();
    if (action === "clear") {
      this.error = null;
      this.state = emptyState();
      this.pending = null;
      this.selected = -1;
      if (this.kind === "DragonEditMove") {
        this.setWidgetValue("dx", 0);
        this.setWidgetValue("dy", 0);
      }
    } else if (action === "delete") {
      if (this.pending) this.pending = null;
      else if (this.state.points.length) {
        const k = this.selected >= 0 ? this.selected : this.state.points.length - 1;
        this.state.points.splice(k, 1);
        this.selected = -1;
      } else {
        this.flash("No pair to delete.");
        return;
      }
    }
    this.commit(snap);
  }

  setMode(mode) {
    this.mode = mode;
    this.updateToolbar();
    this.requestRender();
  }

  flash(message) {
    this.notice = message;
    clearTimeout(this.noticeTimer);
    this.noticeTimer = setTimeout(() => {
      this.notice = null;
      this.updateToolbar();
    }, 4000);
    this.updateToolbar();
  }

  updateToolbar() {
    for (const [mode, button] of Object.entries(this.modeButtons)) {
      const on = mode === this.mode;
      button.classList.toggle("dragon-editor-on", on);
      button.setAttribute("aria-pressed", on ? "true" : "false");
    }
    if (this.actionButtons.undo) this.actionButtons.undo.disabled = this.undoStack.length === 0;
    const brushy = this.mode === "paint" || this.mode === "erase";
    this.sizeInput.parentElement.classList.toggle("dragon-editor-dim", !brushy);
    let hint;
    const outside = this.outsideImage();
    if (this.error) hint = `⚠ ${this.error}`;
    else if (this.notice) hint = this.notice;
    else if (outside) hint = `⚠ ${outside}`;
    else if (this.mode === "points" && this.pending) hint = `Now click the target of handle ${this.state.points.length + 1}.`;
    else hint = MODE_LABELS[this.mode][1].replace("%s", this.spec.region);
    this.hintEl.textContent = hint;
    this.hintEl.title = hint;
    this.hintEl.classList.toggle("dragon-editor-warn", !!(this.error || this.notice || outside));
    const parts = [];
    if (this.spec.modes.includes("points")) parts.push(`${this.state.points.length} pair${this.state.points.length === 1 ? "" : "s"}`);
    if (this.state.boxes.length) parts.push(`${this.state.boxes.length} box${this.state.boxes.length === 1 ? "" : "es"}`);
    if (this.state.strokes.length) parts.push(`${this.state.strokes.length} dab${this.state.strokes.length === 1 ? "" : "s"}`);
    if (this.kind === "DragonEditMove") {
      const [dx, dy] = this.offset();
      parts.push(`dx ${dx}, dy ${dy}`);
    }
    if (this.image) parts.push(`${this.image.naturalWidth}×${this.image.naturalHeight}`);
    this.infoEl.textContent = parts.join(" · ");
    const d = this.root.dataset;
    d.points = String(this.state.points.length);
    d.boxes = String(this.state.boxes.length);
    d.strokes = String(this.state.strokes.length);
    d.mode = this.mode;
  }

  /** A warning when saved points/boxes do not fit the current image (the backend would refuse them). */
  outsideImage() {
    const size = this.imageSize();
    if (!size) return null;
    const [w, h] = size;
    const out = (x, y) => !(x >= 0 && y >= 0 && x < w && y < h);
    const points = this.state.points.filter(([hx, hy, tx, ty]) => out(hx, hy) || out(tx, ty)).length;
    const boxes = this.state.boxes.filter(([x, y, bw, bh]) => x < 0 || y < 0 || x + bw > w || y + bh > h).length;
    if (!points && !boxes) return null;
    return `${points ? `${points} pair(s)` : ""}${points && boxes ? " and " : ""}${boxes ? `${boxes} box(es)` : ""} ` +
      `outside this ${w}×${h} image: move or delete them`;
  }

  // -- image ---------------------------------------------------------------------------------------------
  refreshImage() {
    const up = upstreamImageNode(this.node);
    let source;
    if (!up) source = { url: null, why: ["No image connected.", "Connect Load Image to “image”;", "the editor_json text box still works."] };
    else source = imageSourceOf(up);
    if (!source.url) {
      this.placeholder = source.why;
      if (this.imageStatus !== "none") {
        this.imageStatus = "none";
        this.image = null;
        this.imageUrl = null;
        this.setImageData();
        this.requestRender();
      }
      return;
    }
    if (source.url === this.imageUrl) return;
    this.imageUrl = source.url;
    this.imageStatus = "loading";
    this.setImageData();
    const img = new Image();
    img.decoding = "async";
    img.onload = () => {
      if (this.imageUrl !== source.url) return;
      this.image = img;
      this.imageStatus = "ready";
      if (this.brush == null) {
        this.brush = clamp(Math.round(Math.max(img.naturalWidth, img.naturalHeight) / 24), 2, 64);
      }
      const max = Math.max(8, Math.round(Math.max(img.naturalWidth, img.naturalHeight) / 4));
      this.sizeInput.max = String(max);
      this.brush = clamp(this.brush, 1, max);
      this.sizeInput.value = String(this.brush);
      this.sizeValue.textContent = String(this.brush);
      this.maskDirty = true;
      this.setImageData();
      this.updateToolbar();
      this.requestRender();
    };
    img.onerror = () => {
      if (this.imageUrl !== source.url) return;
      this.image = null;
      this.imageStatus = "error";
      this.placeholder = ["Could not load the image preview.", "The editor_json text box still works."];
      this.setImageData();
      this.requestRender();
    };
    img.src = source.url;
    this.requestRender();
  }

  setImageData() {
    const d = this.root.dataset;
    d.imageStatus = this.imageStatus;
    d.imageWidth = this.image ? String(this.image.naturalWidth) : "";
    d.imageHeight = this.image ? String(this.image.naturalHeight) : "";
  }

  // -- geometry ------------------------------------------------------------------------------------------
  imageSize() {
    return this.image ? [this.image.naturalWidth, this.image.naturalHeight] : null;
  }

  /** Pointer event -> {css: [x, y] in canvas CSS px, img: [x, y] in image px (unclamped)}. */
  locate(e) {
    const rect = this.canvas.getBoundingClientRect();
    const { cssW, cssH, s, ox, oy } = this.view;
    const x = (e.clientX - rect.left) * (cssW / (rect.width || 1));
    const y = (e.clientY - rect.top) * (cssH / (rect.height || 1));
    return { css: [x, y], img: [(x - ox) / s, (y - oy) / s] };
  }

  toCss(x, y) {
    const { s, ox, oy } = this.view;
    return [ox + x * s, oy + y * s];
  }

  inside([x, y]) {
    const [w, h] = this.imageSize();
    return x >= 0 && y >= 0 && x < w && y < h;
  }

  clampPoint([x, y]) {
    const [w, h] = this.imageSize();
    return [clamp(round1(x), 0, w - 0.1), clamp(round1(y), 0, h - 0.1)];
  }

  hitPoint(css) {
    let best = null;
    let bestD = HIT_RADIUS * HIT_RADIUS;
    const test = (x, y, pair, end) => {
      const [cx, cy] = this.toCss(x, y);
      const d = (cx - css[0]) ** 2 + (cy - css[1]) ** 2;
      if (d <= bestD) {
        bestD = d;
        best = { pair, end };
      }
    };
    this.state.points.forEach(([hx, hy, tx, ty], k) => {
      test(hx, hy, k, 0);
      test(tx, ty, k, 1);
    });
    if (this.pending) test(this.pending[0], this.pending[1], -1, 0);
    return best;
  }

  hitBox(img) {
    for (let k = this.state.boxes.length - 1; k >= 0; k--) {
      const [x, y, w, h] = this.state.boxes[k];
      if (img[0] >= x && img[0] <= x + w && img[1] >= y && img[1] <= y + h) return k;
    }
    return -1;
  }

  objectBounds() {
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const [x, y, w, h] of this.state.boxes) {
      x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x + w); y1 = Math.max(y1, y + h);
    }
    for (const [x, y, r, paint] of this.state.strokes) {
      if (!paint) continue;
      x0 = Math.min(x0, x - r); y0 = Math.min(y0, y - r); x1 = Math.max(x1, x + r); y1 = Math.max(y1, y + r);
    }
    if (!Number.isFinite(x0)) return null;
    const [w, h] = this.imageSize();
    x0 = clamp(x0, 0, w); x1 = clamp(x1, 0, w); y0 = clamp(y0, 0, h); y1 = clamp(y1, 0, h);
    return [x0, y0, x1 - x0, y1 - y0];
  }

  arrowOrigin() {
    const b = this.objectBounds();
    if (b) return [b[0] + b[2] / 2, b[1] + b[3] / 2];
    const [w, h] = this.imageSize();
    return [w / 2, h / 2];
  }

  // -- pointer handling ----------------------------------------------------------------------------------
  onPointerDown(e) {
    if (e.button === 1) {
      // middle button pans the graph: the Vue node forwards it itself; the classic overlay needs a hand
      if (this.inClassicOverlay()) app.canvas?.processMouseDown?.(e);
      return;
    }
    e.stopPropagation();
    if (e.button !== 0) return;
    if (!this.image) {
      this.flash("No image yet: connect one (the editor_json text box still works).");
      return;
    }
    if (this.error) {
      this.flash(this.error);
      return;
    }
    const at = this.locate(e);
    this.hover = at.css;
    const snap = this.snapshot();
    const mode = this.mode;
    if (mode === "points") {
      const hit = this.hitPoint(at.css);
      if (hit) {
        this.selected = hit.pair;
        this.gesture = { type: "point", ...hit, snap };
      } else {
        if (!this.inside(at.img)) return;
        const p = this.clampPoint(at.img);
        if (this.pending) {
          if (this.state.points.length >= LIMITS.points) {
            this.flash(`At most ${LIMITS.points} pairs.`);
            return;
          }
          this.state.points.push([...this.pending, ...p]);
          this.pending = null;
          this.selected = this.state.points.length - 1;
          this.gesture = { type: "point", pair: this.selected, end: 1, snap };
        } else {
          this.pending = p;
          this.gesture = { type: "point", pair: -1, end: 0, snap };
        }
      }
    } else if (mode === "paint" || mode === "erase") {
      if (this.state.strokes.length >= LIMITS.strokes) {
        this.flash(`At most ${LIMITS.strokes} brush dabs: erase with a box or Clear.`);
        return;
      }
      this.gesture = { type: "brush", paint: mode === "paint" ? 1 : 0, snap, last: null, first: this.state.strokes.length };
      this.addDab(at.img);
    } else if (mode === "box") {
      if (!this.inside(at.img)) return;
      if (this.state.boxes.length >= LIMITS.boxes) {
        this.flash(`At most ${LIMITS.boxes} boxes.`);
        return;
      }
      const p = this.clampBoxCorner(at.img);
      this.gesture = { type: "box", start: p, end: p, snap };
    } else if (mode === "arrow") {
      const [dx, dy] = this.offset();
      const origin = this.arrowOrigin();
      const tip = this.toCss(origin[0] + dx, origin[1] + dy);
      const onTip = (tip[0] - at.css[0]) ** 2 + (tip[1] - at.css[1]) ** 2 <= HIT_RADIUS * HIT_RADIUS;
      this.gesture = { type: "arrow", start: at.img, base: onTip ? [dx, dy] : [0, 0], snap };
    }
    if (this.gesture) this.canvas.setPointerCapture?.(e.pointerId);
    this.updateToolbar();
    this.requestRender();
  }

  onPointerMove(e) {
    if (e.buttons & 4) return; // middle-button panning
    e.stopPropagation();
    const at = this.locate(e);
    this.hover = at.css;
    const g = this.gesture;
    if (g && this.image) {
      if (g.type === "point") {
        const p = this.clampPoint(at.img);
        if (g.pair < 0) this.pending = p;
        else {
          const pair = this.state.points[g.pair];
          pair[2 * g.end] = p[0];
          pair[2 * g.end + 1] = p[1];
        }
      } else if (g.type === "brush") {
        this.addDab(at.img);
      } else if (g.type === "box") {
        g.end = this.clampBoxCorner(at.img);
      } else if (g.type === "arrow") {
        this.setOffset(g.base[0] + at.img[0] - g.start[0], g.base[1] + at.img[1] - g.start[1]);
      }
    }
    this.requestRender();
  }

  onPointerUp(e) {
    if (e.button === 1) {
      if (this.inClassicOverlay()) app.canvas?.processMouseUp?.(e);
      return;
    }
    e.stopPropagation();
    const g = this.gesture;
    this.gesture = null;
    if (!g) return;
    this.canvas.releasePointerCapture?.(e.pointerId);
    if (g.type === "box") {
      const x0 = Math.min(g.start[0], g.end[0]), x1 = Math.max(g.start[0], g.end[0]);
      const y0 = Math.min(g.start[1], g.end[1]), y1 = Math.max(g.start[1], g.end[1]);
      if (x1 - x0 >= 1 && y1 - y0 >= 1) this.state.boxes.push([x0, y0, x1 - x0, y1 - y0]);
    } else if (g.type === "brush") {
      this.compactStroke(g);
    } else if (g.type === "arrow" && e.type === "pointercancel") {
      this.restore(g.snap);
      return;
    }
    this.commit(g.snap);
  }

  onContextMenu(e) {
    e.preventDefault();
    e.stopPropagation();
    if (!this.image || this.error) return;
    const at = this.locate(e);
    const snap = this.snapshot();
    const hit = this.spec.modes.includes("points") ? this.hitPoint(at.css) : null;
    if (hit) {
      if (hit.pair < 0) this.pending = null;
      else {
        this.state.points.splice(hit.pair, 1);
        this.selected = -1;
      }
    } else {
      const k = this.hitBox(at.img);
      if (k < 0) return;
      this.state.boxes.splice(k, 1);
    }
    this.commit(snap);
  }

  clampBoxCorner([x, y]) {
    const [w, h] = this.imageSize();
    return [clamp(Math.round(x), 0, w), clamp(Math.round(y), 0, h)];
  }

  setOffset(dx, dy) {
    const lim = 16384;
    this.setWidgetValue("dx", clamp(Math.round(dx), -lim, lim));
    this.setWidgetValue("dy", clamp(Math.round(dy), -lim, lim));
    this.lastWidgetSig = ["dx", "dy", "scale"].map((n) => this.widget(n)?.value).join(",");
    this.node.setDirtyCanvas?.(true, true);
    this.updateToolbar();
  }

  /** Add brush dabs along the pointer path: none closer than r/2 to the last one, gaps filled every r. */
  addDab(img) {
    const g = this.gesture;
    const r = this.brush || 1;
    const [w, h] = this.imageSize();
    const p = [clamp(img[0], -r, w + r), clamp(img[1], -r, h + r)];
    const push = (x, y) => {
      if (this.state.strokes.length >= LIMITS.strokes) return;
      const dab = [x, y, r, g.paint];
      this.state.strokes.push(dab);
      this.paintMaskDab(dab);
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

  /** Round this stroke's dabs to whole pixels and drop repeats (what serializeState writes). */
  compactStroke(g) {
    const start = g.first;
    const kept = this.state.strokes.slice(0, start);
    let prev = kept[kept.length - 1] ?? null;
    for (const [x, y, r, paint] of this.state.strokes.slice(start)) {
      const dab = [Math.round(x), Math.round(y), Math.max(1, Math.round(r)), paint];
      if (prev && prev.every((v, i) => v === dab[i])) continue;
      kept.push(dab);
      prev = dab;
    }
    this.state.strokes = kept;
  }

  // -- drawing -------------------------------------------------------------------------------------------
  requestRender() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  layout() {
    const cssW = this.canvas.clientWidth;
    const cssH = this.canvas.clientHeight;
    const dpr = Math.max(1, window.devicePixelRatio || 1);
    const bw = Math.max(1, Math.round(cssW * dpr));
    const bh = Math.max(1, Math.round(cssH * dpr));
    if (this.canvas.width !== bw || this.canvas.height !== bh) {
      this.canvas.width = bw;
      this.canvas.height = bh;
    }
    const v = { cssW, cssH, dpr, s: 1, ox: 0, oy: 0 };
    if (this.image) {
      const [w, h] = this.imageSize();
      v.s = Math.min(cssW / w, cssH / h) || 1;
      v.ox = (cssW - w * v.s) / 2;
      v.oy = (cssH - h * v.s) / 2;
    }
    const old = this.view;
    if (old.s !== v.s || old.ox !== v.ox || old.oy !== v.oy || old.dpr !== v.dpr) this.maskDirty = true;
    this.view = v;
    return v;
  }

  /** The painted/boxed mask at display resolution (device px of the image rectangle), in the tint colour. */
  rebuildMask() {
    const [w, h] = this.imageSize();
    const { s, dpr } = this.view;
    const mw = Math.max(1, Math.round(w * s * dpr));
    const mh = Math.max(1, Math.round(h * s * dpr));
    this.mask.width = mw;
    this.mask.height = mh;
    const ctx = this.mask.getContext("2d");
    ctx.clearRect(0, 0, mw, mh);
    this.maskScale = mw / w;
    ctx.fillStyle = `rgb(${this.spec.tint.join(",")})`;
    for (const [x, y, bw, bh] of this.state.boxes) {
      ctx.fillRect(x * this.maskScale, y * this.maskScale, bw * this.maskScale, bh * this.maskScale);
    }
    for (const dab of this.state.strokes) this.paintMaskDab(dab, ctx);
    this.maskDirty = false;
  }

  paintMaskDab([x, y, r, paint], ctx = null) {
    if (!ctx) {
      if (this.maskDirty) return; // rebuilt in full on the next frame
      ctx = this.mask.getContext("2d");
      ctx.fillStyle = `rgb(${this.spec.tint.join(",")})`;
    }
    const k = this.maskScale;
    ctx.globalCompositeOperation = paint ? "source-over" : "destination-out";
    ctx.beginPath();
    ctx.arc(x * k, y * k, r * k, 0, Math.PI * 2);
    ctx.fill();
    ctx.globalCompositeOperation = "source-over";
  }

  render() {
    const v = this.layout();
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(v.dpr, 0, 0, v.dpr, 0, 0);
    ctx.clearRect(0, 0, v.cssW, v.cssH);
    ctx.fillStyle = "#18191c";
    ctx.fillRect(0, 0, v.cssW, v.cssH);
    if (!this.image) {
      this.drawPlaceholder(ctx, v);
      return;
    }
    const [w, h] = this.imageSize();
    ctx.imageSmoothingEnabled = v.s < 2;
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(this.image, v.ox, v.oy, w * v.s, h * v.s);
    ctx.imageSmoothingEnabled = true;

    if (this.maskDirty) this.rebuildMask();
    if (this.kind === "DragonEditMove") this.drawMoveGhost(ctx, v);
    ctx.globalAlpha = 0.42;
    ctx.drawImage(this.mask, v.ox, v.oy, w * v.s, h * v.s);
    ctx.globalAlpha = 1;
    for (const b of this.state.boxes) this.drawBox(ctx, b, false);
    const g = this.gesture;
    if (g?.type === "box") {
      const x0 = Math.min(g.start[0], g.end[0]), y0 = Math.min(g.start[1], g.end[1]);
      this.drawBox(ctx, [x0, y0, Math.abs(g.end[0] - g.start[0]), Math.abs(g.end[1] - g.start[1])], true);
    }
    if (this.kind === "DragonEditMove") this.drawMoveArrow(ctx);
    this.state.points.forEach((p, k) => this.drawPair(ctx, p, k));
    if (this.pending) this.drawHandle(ctx, this.pending, this.state.points.length + 1, true, true);
    this.drawCursor(ctx);
  }

  drawPlaceholder(ctx, v) {
    const lines = this.imageStatus === "loading" ? ["Loading image…"] : this.placeholder;
    ctx.strokeStyle = "rgba(255,255,255,0.18)";
    ctx.setLineDash([6, 6]);
    ctx.lineWidth = 1;
    ctx.strokeRect(8.5, 8.5, Math.max(0, v.cssW - 17), Math.max(0, v.cssH - 17));
    ctx.setLineDash([]);
    ctx.fillStyle = "rgba(235,235,235,0.85)";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    const size = clamp(Math.round(v.cssW / 26), 11, 15);
    ctx.font = `${size}px system-ui, sans-serif`;
    const top = v.cssH / 2 - ((lines.length - 1) * size * 1.5) / 2;
    lines.forEach((line, k) => ctx.fillText(line, v.cssW / 2, top + k * size * 1.5, v.cssW - 24));
  }

  drawBox(ctx, [x, y, w, h], live) {
    const [cx, cy] = this.toCss(x, y);
    const { s } = this.view;
    ctx.lineWidth = 1.5;
    ctx.setLineDash([]);
    ctx.strokeStyle = "rgba(0,0,0,0.75)";
    ctx.strokeRect(cx, cy, w * s, h * s);
    ctx.setLineDash([5, 4]);
    ctx.strokeStyle = live ? "#ffe066" : "#ffffff";
    ctx.strokeRect(cx, cy, w * s, h * s);
    ctx.setLineDash([]);
  }

  arrow(ctx, from, to, color, width) {
    const [x0, y0] = from;
    const [x1, y1] = to;
    const len = Math.hypot(x1 - x0, y1 - y0);
    if (len < 1) return;
    const ux = (x1 - x0) / len, uy = (y1 - y0) / len;
    const head = Math.min(14, Math.max(8, len * 0.35));
    const bx = x1 - ux * head, by = y1 - uy * head;
    ctx.lineCap = "round";
    for (const [style, extra] of [["rgba(0,0,0,0.7)", 3], [color, 0]]) {
      ctx.strokeStyle = style;
      ctx.fillStyle = style;
      ctx.lineWidth = width + extra;
      ctx.beginPath();
      ctx.moveTo(x0, y0);
      ctx.lineTo(bx, by);
      ctx.stroke();
      ctx.beginPath();
      const e = extra / 2;
      ctx.moveTo(x1 + ux * e, y1 + uy * e);
      ctx.lineTo(bx - uy * (head * 0.55 + e) - ux * e, by + ux * (head * 0.55 + e) - uy * e);
      ctx.lineTo(bx + uy * (head * 0.55 + e) - ux * e, by - ux * (head * 0.55 + e) - uy * e);
      ctx.closePath();
      ctx.fill();
    }
  }

  drawHandle(ctx, [x, y], label, pending, selected) {
    const [cx, cy] = this.toCss(x, y);
    const r = 9;
    ctx.beginPath();
    ctx.arc(cx, cy, r + 2, 0, Math.PI * 2);
    ctx.fillStyle = selected ? "#ffe066" : "rgba(0,0,0,0.75)";
    ctx.fill();
    ctx.beginPath();
    ctx.arc(cx, cy, r, 0, Math.PI * 2);
    ctx.fillStyle = "#e5484d";
    ctx.fill();
    if (pending) {
      ctx.setLineDash([3, 3]);
      ctx.strokeStyle = "#ffffff";
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      ctx.arc(cx, cy, r + 5, 0, Math.PI * 2);
      ctx.stroke();
      ctx.setLineDash([]);
    }
    ctx.fillStyle = "#ffffff";
    ctx.font = "bold 11px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(String(label), cx, cy + 0.5);
  }

  drawPair(ctx, [hx, hy, tx, ty], k) {
    const selected = k === this.selected;
    const h = this.toCss(hx, hy);
    const t = this.toCss(tx, ty);
    const len = Math.hypot(t[0] - h[0], t[1] - h[1]);
    if (len > 12) {
      const ux = (t[0] - h[0]) / len, uy = (t[1] - h[1]) / len;
      this.arrow(ctx, [h[0] + ux * 11, h[1] + uy * 11], [t[0] - ux * 7, t[1] - uy * 7], selected ? "#ffe066" : "#ffffff", 2.5);
    }
    ctx.beginPath();
    ctx.arc(t[0], t[1], 7, 0, Math.PI * 2);
    ctx.fillStyle = selected ? "#ffe066" : "rgba(0,0,0,0.75)";
    ctx.fill();
    ctx.beginPath();
    ctx.arc(t[0], t[1], 5.5, 0, Math.PI * 2);
    ctx.fillStyle = "#3e8ef7";
    ctx.fill();
    ctx.beginPath();
    ctx.arc(t[0], t[1], 2, 0, Math.PI * 2);
    ctx.fillStyle = "#ffffff";
    ctx.fill();
    this.drawHandle(ctx, [hx, hy], k + 1, false, selected);
  }

  drawMoveGhost(ctx, v) {
    const [dx, dy] = this.offset();
    const scale = Number(this.widget("scale")?.value) || 1;
    const b = this.objectBounds();
    if (!b || (dx === 0 && dy === 0 && scale === 1)) return;
    const [w, h] = this.imageSize();
    const [ocx, ocy] = [b[0] + b[2] / 2, b[1] + b[3] / 2];
    // the object, scaled about its centre and moved by (dx, dy), as the backend places it
    const place = (x, y) => this.toCss(ocx + dx + (x - ocx) * scale, ocy + dy + (y - ocy) * scale);
    const [gx, gy] = place(0, 0);
    ctx.save();
    ctx.beginPath();
    ctx.rect(v.ox, v.oy, w * v.s, h * v.s);
    ctx.clip();
    ctx.globalAlpha = 0.22;
    ctx.drawImage(this.mask, gx, gy, w * v.s * scale, h * v.s * scale);
    ctx.globalAlpha = 1;
    const [bx, by] = place(b[0], b[1]);
    ctx.setLineDash([4, 4]);
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = `rgb(${this.spec.tint.join(",")})`;
    ctx.strokeRect(bx, by, b[2] * v.s * scale, b[3] * v.s * scale);
    ctx.setLineDash([]);
    ctx.restore();
  }

  drawMoveArrow(ctx) {
    const [dx, dy] = this.offset();
    const origin = this.arrowOrigin();
    const from = this.toCss(origin[0], origin[1]);
    const to = this.toCss(origin[0] + dx, origin[1] + dy);
    if (dx !== 0 || dy !== 0) this.arrow(ctx, from, to, "#ffe066", 3);
    if (this.objectBounds()) {
      ctx.beginPath();
      ctx.arc(from[0], from[1], 4, 0, Math.PI * 2);
      ctx.fillStyle = "#ffe066";
      ctx.fill();
    }
    if (dx !== 0 || dy !== 0) {
      const text = `${dx > 0 ? "+" : ""}${dx}, ${dy > 0 ? "+" : ""}${dy}`;
      ctx.font = "bold 11px system-ui, sans-serif";
      ctx.textAlign = "left";
      ctx.textBaseline = "bottom";
      ctx.lineWidth = 3;
      ctx.strokeStyle = "rgba(0,0,0,0.8)";
      ctx.strokeText(text, to[0] + 8, to[1] - 6);
      ctx.fillStyle = "#ffe066";
      ctx.fillText(text, to[0] + 8, to[1] - 6);
    }
  }

  drawCursor(ctx) {
    if (!this.hover || (this.mode !== "paint" && this.mode !== "erase")) return;
    const r = (this.brush || 1) * this.view.s;
    const [x, y] = this.hover;
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = "rgba(0,0,0,0.8)";
    ctx.beginPath();
    ctx.arc(x, y, r + 1, 0, Math.PI * 2);
    ctx.stroke();
    ctx.strokeStyle = "#ffffff";
    if (this.mode === "erase") ctx.setLineDash([4, 3]);
    ctx.beginPath();
    ctx.arc(x, y, r, 0, Math.PI * 2);
    ctx.stroke();
    ctx.setLineDash([]);
  }

  // -- life cycle ----------------------------------------------------------------------------------------
  tick() {
    this.root.dataset.dragonNodeId = String(this.node.id); // ids are given when the node joins a graph
    this.syncFromWidgets();
    this.refreshImage();
  }

  dispose() {
    editors.delete(this);
    this.resizeObserver.disconnect();
    clearTimeout(this.noticeTimer);
    if (this.frame) cancelAnimationFrame(this.frame);
    this.frame = 0;
  }
}

// ------------------------------------------------------------------------------------------ wiring

function pollEditors() {
  for (const editor of editors) {
    if (!editor.node.graph) continue;
    try {
      editor.tick();
    } catch (error) {
      editor.dispose();
      console.error("[DragonDiffusion] editor stopped:", error);
    }
  }
}

function attachEditor(node) {
  if (node.dragonEditor) return;
  const editor = new DragonEditor(node);
  node.dragonEditor = editor;
  const widget = node.addDOMWidget(EDITOR_WIDGET, EDITOR_WIDGET, editor.root, {
    serialize: false,
    hideOnZoom: true,
    getValue: () => "",
    setValue: () => {},
    getMinHeight: () => 250,
  });
  widget.serialize = false; // not part of widgets_values: editor_json is the saved state
  // The editor is the main way to fill editor_json: keep the raw JSON text box small (classic renderer).
  const json = editor.widget("editor_json");
  if (json?.options) {
    json.options.getMinHeight = () => 44;
    json.options.getMaxHeight = () => 96;
  }
  editors.add(editor);
  const [w, h] = node.size;
  node.setSize([Math.max(w, 420), Math.max(h, 600)]);
  editor.tick();
}

function attachBankInfo(node) {
  if (node.dragonBankInfo) return;
  ensureStylesheet();
  const box = el("div", "dragon-bank-info", "Memory bank: run the workflow to see its size.");
  box.classList.add("dragon-bank-info-empty");
  const widget = node.addDOMWidget(BANK_WIDGET, BANK_WIDGET, box, {
    serialize: false,
    hideOnZoom: true,
    getValue: () => "",
    setValue: () => {},
    // room for the whole text once it is there (it wraps), within reason
    getMinHeight: () => clamp((box.scrollHeight || 0) + 12, 40, 140),
  });
  widget.serialize = false;
  node.dragonBankInfo = box;
}

function showBankInfo(node, message) {
  const box = node.dragonBankInfo;
  if (!box) return;
  const text = message?.text;
  const lines = (Array.isArray(text) ? text : text == null ? [] : [text]).map((t) => String(t));
  box.textContent = lines.length ? lines.join("\n") : "Memory bank: (no size reported)";
  box.classList.toggle("dragon-bank-info-empty", !lines.length);
  requestAnimationFrame(() => {
    // grow the node so the text shows in full (classic renderer; Vue nodes size to their content)
    const [w, h] = node.computeSize?.() ?? node.size;
    if (h > node.size[1]) node.setSize([Math.max(node.size[0], w), h]);
    node.setDirtyCanvas?.(true, true);
  });
}

function chain(proto, name, after) {
  const original = proto[name];
  proto[name] = function (...args) {
    const result = original?.apply(this, args);
    try {
      after.apply(this, args);
    } catch (error) {
      console.error(`[DragonDiffusion] ${name}:`, error);
    }
    return result;
  };
}

app.registerExtension({
  name: EXTENSION_NAME,

  async setup() {
    setInterval(pollEditors, POLL_MS);
    api.addEventListener("executed", () => setTimeout(pollEditors, 0));
  },

  async beforeRegisterNodeDef(nodeType, nodeData) {
    const name = nodeData?.name;
    if (KINDS[name]) {
      chain(nodeType.prototype, "onNodeCreated", function () {
        attachEditor(this);
      });
      chain(nodeType.prototype, "onConfigure", function () {
        this.dragonEditor?.syncFromWidgets();
      });
      chain(nodeType.prototype, "onConnectionsChange", function () {
        if (this.dragonEditor) setTimeout(() => this.dragonEditor?.tick(), 0);
      });
      chain(nodeType.prototype, "onAdded", function () {
        if (this.dragonEditor) {
          editors.add(this.dragonEditor);
          this.dragonEditor.tick();
        }
      });
      chain(nodeType.prototype, "onRemoved", function () {
        this.dragonEditor?.dispose();
      });
    } else if (name === "DragonDDIMInversion") {
      chain(nodeType.prototype, "onNodeCreated", function () {
        attachBankInfo(this);
      });
      chain(nodeType.prototype, "onExecuted", function (message) {
        showBankInfo(this, message);
      });
    }
  },
});
