// The editor's DOM: toolbar (tools, brush radius, actions), the <canvas> stage and the status line, and
// keeping them in step with the editor. All text reaches the DOM through textContent.

export const MODE_LABELS = {
  points: ["Points", "Click a handle, then its target; drag a point to move it. Del: delete pair · Esc: cancel."],
  paint: ["Brush", "Paint the %s (radius r in image pixels)."],
  erase: ["Eraser", "Erase from the %s."],
  box: ["Box", "A new box replaces the %s's box; Shift+drag adds one. Right-click deletes a box."],
  arrow: ["Arrow", "Drag from the object to its new place: sets dx and dy."],
  place: ["Place", "Drag the outline to where the object goes (dx, dy); drag its corner to scale it."],
};

// Keyboard shortcuts inside the editor (when it has focus): tools by their first letter.
export const MODE_KEYS = { p: "points", b: "box", r: "paint", e: "erase", a: "arrow" };

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

export function ensureStylesheet() {
  const id = "dragon-editor-css";
  if (document.getElementById(id)) return;
  const link = document.createElement("link");
  link.id = id;
  link.rel = "stylesheet";
  link.href = new URL("../dragon_editor.css", import.meta.url).href;
  document.head.appendChild(link);
}

/** Build the editor's DOM into `ed` (root, stage, canvas, buttons, status elements). */
export function buildDom(ed) {
  ensureStylesheet();
  const root = el("div", "dragon-editor widget-expands");
  root.tabIndex = 0; // keyboard shortcuts work once the editor has focus
  root.dataset.dragonNodeId = String(ed.node.id);
  root.dataset.dragonKind = ed.kind;
  const bar = el("div", "dragon-editor-toolbar");
  ed.modeButtons = {};
  for (const mode of ed.spec.modes) {
    const [label, tip] = MODE_LABELS[mode];
    const button = el("button", "dragon-editor-button", label);
    button.type = "button";
    button.dataset.mode = mode;
    const key = Object.keys(MODE_KEYS).find((k) => MODE_KEYS[k] === mode);
    button.title = tip.replace("%s", ed.spec.region) + (key ? ` (${key.toUpperCase()})` : "");
    button.addEventListener("click", () => ed.setMode(mode));
    bar.appendChild(button);
    ed.modeButtons[mode] = button;
  }
  const size = el("label", "dragon-editor-size");
  size.title = "Brush radius in image pixels";
  size.appendChild(el("span", null, "r"));
  const input = document.createElement("input");
  Object.assign(input, { type: "range", min: "1", max: "64", step: "1", value: "8" });
  input.setAttribute("aria-label", "Brush radius in image pixels");
  ed.sizeInput = input;
  ed.sizeValue = el("span", "dragon-editor-size-value", "8");
  input.addEventListener("input", () => ed.setBrush(Number(input.value)));
  size.append(input, ed.sizeValue);
  if (ed.spec.modes.includes("paint")) bar.appendChild(size);
  const actions = [["undo", "Undo", "Undo the last change, in the editor or the graph (Ctrl+Z)"]];
  if (ed.spec.modes.includes("points")) actions.push(["delete", "Delete pair", "Delete the selected (or last) handle/target pair (Delete)"]);
  actions.push(["clear", "Clear", ed.spec.json ? "Remove all points, boxes and painting" : "Put the object back: dx = dy = 0, scale 1"]);
  ed.actionButtons = {};
  for (const [action, label, tip] of actions) {
    const button = el("button", "dragon-editor-button dragon-editor-action", label);
    button.type = "button";
    button.dataset.action = action;
    button.title = tip;
    button.addEventListener("click", () => ed.runAction(action));
    bar.appendChild(button);
    ed.actionButtons[action] = button;
  }
  const stage = el("div", "dragon-editor-stage");
  const canvas = document.createElement("canvas");
  canvas.className = "dragon-editor-canvas";
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", "DragonDiffusion edit canvas");
  stage.appendChild(canvas);
  const status = el("div", "dragon-editor-status");
  ed.hintEl = el("span", "dragon-editor-hint");
  ed.infoEl = el("span", "dragon-editor-info");
  status.append(ed.hintEl, ed.infoEl);
  root.append(bar, stage, status);
  // The toolbar owns its pointer events: keep them from dragging the node (Vue renderer).
  for (const type of ["pointerdown", "pointermove", "pointerup", "dblclick"]) {
    bar.addEventListener(type, (e) => e.stopPropagation());
  }
  ed.root = root;
  ed.stage = stage;
  ed.canvas = canvas;
}

const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

/** Refresh buttons, the status line (hint + counts) and the root's data-* attributes from `ed`. */
export function updateToolbar(ed) {
  for (const [mode, button] of Object.entries(ed.modeButtons)) {
    const on = mode === ed.mode;
    button.classList.toggle("dragon-editor-on", on);
    button.setAttribute("aria-pressed", on ? "true" : "false");
  }
  const brushy = ed.mode === "paint" || ed.mode === "erase";
  ed.sizeInput.parentElement?.classList.toggle("dragon-editor-dim", !brushy);
  const outside = ed.outsideImage();
  let hint;
  if (ed.error) hint = `⚠ ${ed.error}`;
  else if (ed.notice) hint = ed.notice;
  else if (outside) hint = `⚠ ${outside}`;
  else if (ed.mode === "points" && ed.pending) hint = `Now click the target of handle ${ed.state.points.length + 1} (Esc cancels).`;
  else if (ed.mode === "place" && !ed.paste?.box) hint = ed.paste?.why ?? MODE_LABELS.place[1];
  else hint = MODE_LABELS[ed.mode][1].replace("%s", ed.spec.region);
  ed.hintEl.textContent = hint;
  ed.hintEl.title = hint;
  ed.hintEl.classList.toggle("dragon-editor-warn", !!(ed.error || ed.notice || outside));
  const parts = [];
  const { points, boxes, strokes } = ed.state;
  if (ed.spec.modes.includes("points")) parts.push(plural(points.length, "pair", "pairs"));
  if (ed.spec.modes.includes("box")) parts.push(boxes.length > 1 ? `${boxes.length} boxes (union)` : plural(boxes.length, "box", "boxes"));
  if (strokes.length) parts.push(plural(strokes.length, "dab", "dabs"));
  if (ed.spec.offset) {
    const [dx, dy] = ed.offset();
    parts.push(`dx ${dx}, dy ${dy}`);
    if (ed.kind === "DragonEditPaste") parts.push(`scale ${ed.scale()}`);
  }
  if (ed.image) parts.push(`${ed.image.naturalWidth}×${ed.image.naturalHeight}`);
  ed.infoEl.textContent = parts.join(" · ");
  const d = ed.root.dataset;
  d.points = String(points.length);
  d.boxes = String(boxes.length);
  d.strokes = String(strokes.length);
  d.pending = ed.pending ? "1" : "0";
  d.selected = String(ed.selected);
  d.mode = ed.mode;
}
