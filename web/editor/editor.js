// One on-node editor: owns the state read from the node's widgets (editor_json, dx, dy, scale), writes it
// back after each gesture, and asks the other modules to draw (drawing.js), handle input (input.js) and
// build its DOM (toolbar.js). The widget values are the only saved state: they survive save/load, copy/paste
// and ComfyUI's undo, and the editor re-reads them whenever they change.

import { KINDS, clamp, emptyState, limitProblem, outsideWarning, parseEditorJson, regionBounds, serializeState } from "./state.js";
import { ImageSlot, sourceForInput, upstreamNode } from "./image_source.js";
import { buildDom, updateToolbar } from "./toolbar.js";
import { render } from "./drawing.js";
import { attachInput } from "./input.js";
import { recordChange, undoLast } from "./history.js";

const { app } = window.comfyAPI.app;

export class DragonEditor {
  constructor(node) {
    this.node = node;
    this.kind = node.comfyClass || node.type;
    this.spec = KINDS[this.kind];
    this.mode = this.spec.modes[0];
    this.state = emptyState();
    this.pending = null; // [x, y] handle waiting for its target (drag node)
    this.selected = -1; // index of the selected pair
    this.error = null; // message when editor_json cannot be read
    this.lastText = undefined;
    this.brush = null; // radius in image px; set from the image size on first load
    this.placeholder = ["No image connected."];
    this.gesture = null;
    // dx/dy/scale while an arrow or outline is dragged: shown, not yet written to the widgets. The graph changes
    // once, when the gesture ends, so the change tracker never records a half-done gesture as an undo step (the
    // newer front ends record the graph on any key released and again in a debounced squash after each step).
    this.preview = null;
    this.hover = null; // pointer position in CSS px of the canvas
    this.notice = null;
    this.noticeTimer = 0;
    this.view = { s: 1, ox: 0, oy: 0, cssW: 0, cssH: 0 };
    this.mask = document.createElement("canvas");
    this.maskDirty = true;
    this.frame = 0;
    this.slot = new ImageSlot((image, status) => this.onImage(image, status));
    this.paste = this.kind === "DragonEditPaste" ? { box: null, image: null, why: null } : null;
    this.referenceSlot = this.paste ? new ImageSlot((image) => {
      this.paste.image = image;
      this.requestRender();
    }) : null;
    buildDom(this);
    attachInput(this);
    this.resizeObserver = new ResizeObserver(() => this.requestRender());
    this.resizeObserver.observe(this.stage);
    this.updateToolbar();
  }

  get image() {
    return this.slot.image;
  }

  get imageStatus() {
    return this.slot.status;
  }

  /** The Vue renderer of 1.32 keeps showing this editor's element after ComfyUI's undo reloaded the graph,
   * for the node's successor (same id): the editor then works on that node. */
  adoptSuccessor() {
    if (this.isLive()) return;
    const next = app.graph?.getNodeById?.(this.node.id);
    if (!next || next === this.node || (next.comfyClass || next.type) !== this.kind) return;
    this.node = next;
    this.lastText = undefined; // re-read its widgets
  }

  /** Whether the node is (still) in its graph. */
  isLive() {
    const graph = this.node.graph;
    return !!graph && graph.getNodeById?.(this.node.id) === this.node;
  }

  inClassicOverlay() {
    return !this.root.closest("[data-node-id]"); // Vue nodes carry data-node-id; classic DOM widgets float over the canvas
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

  offset() {
    if (this.preview) return [this.preview.dx, this.preview.dy];
    return [Number(this.widget("dx")?.value) || 0, Number(this.widget("dy")?.value) || 0];
  }

  scale() {
    if (this.preview) return this.preview.scale;
    return Number(this.widget("scale")?.value) || 1;
  }

  /** Show dx/dy/scale (any left out keep their value) without changing the graph; commit() writes them. */
  previewOffset(change) {
    const [dx, dy] = this.offset();
    this.preview = { dx, dy, scale: this.scale(), ...change };
    this.updateToolbar();
    this.requestRender();
  }

  /** Re-read editor_json if it changed outside the editor (load, paste, hand edit, undo); redraw. */
  syncFromWidgets() {
    if (this.spec.json) {
      const w = this.widget("editor_json");
      const text = w ? w.value : "";
      if (text !== this.lastText) {
        this.lastText = text;
        this.pending = null;
        this.gesture = null;
        this.preview = null;
        const parsed = parseEditorJson(text);
        if (parsed.error) {
          this.error = parsed.error;
        } else {
          this.error = null;
          this.state = parsed.state;
          if (this.selected >= this.state.points.length) this.selected = -1;
        }
        this.maskDirty = true;
      }
    }
    this.updateToolbar();
    this.requestRender();
  }

  writeState() {
    if (!this.spec.json) return;
    const text = serializeState(this.state);
    this.lastText = text;
    this.setWidgetValue("editor_json", text);
    this.node.setDirtyCanvas?.(true, true);
  }

  // -- changes -------------------------------------------------------------------------------------------
  /** What a cancelled gesture goes back to. */
  snapshot() {
    return {
      text: serializeState(this.state),
      pending: this.pending ? this.pending.slice() : null,
      offset: this.spec.offset ? [...this.offset(), this.scale()] : null,
    };
  }

  /** Finish a change: write the widgets and record it as one undo step of the graph. A change whose
   * editor_json the node would refuse is taken back, with the reason in the status line; one that only removes
   * (`removal`: Delete, right-click, Clear) always goes through, as it can only bring the JSON nearer the limits. */
  commit(snap, { removal = false } = {}) {
    if (this.preview) {
      const { dx, dy, scale } = this.preview;
      this.preview = null;
      this.setWidgetValue("dx", dx);
      this.setWidgetValue("dy", dy);
      if (this.widget("scale")) this.setWidgetValue("scale", scale);
      this.node.setDirtyCanvas?.(true, true);
    }
    const problem = removal ? null : limitProblem(this.state, this.imageSize());
    if (problem) {
      this.restore(snap);
      this.flash(problem);
      return;
    }
    const text = serializeState(this.state);
    if (this.spec.json && text !== this.lastText) this.writeState();
    recordChange();
    this.maskDirty = true;
    this.updateToolbar();
    this.requestRender();
  }

  restore(snap) {
    this.preview = null;
    this.state = parseEditorJson(snap.text).state;
    this.pending = snap.pending ? snap.pending.slice() : null;
    if (snap.offset) {
      this.setWidgetValue("dx", snap.offset[0]);
      this.setWidgetValue("dy", snap.offset[1]);
      this.setWidgetValue("scale", snap.offset[2]);
    }
    if (this.selected >= this.state.points.length) this.selected = -1;
    this.writeState();
    this.maskDirty = true;
    this.updateToolbar();
    this.requestRender();
  }

  async runAction(action) {
    if (action === "undo") {
      if (this.pending) {
        this.pending = null; // a lone handle is not in the graph yet: undo it here
        this.updateToolbar();
        this.requestRender();
        return;
      }
      if (!(await undoLast())) this.flash("Nothing to undo.");
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
      if (this.spec.offset) {
        this.setWidgetValue("dx", 0);
        this.setWidgetValue("dy", 0);
        if (this.kind === "DragonEditPaste") this.setWidgetValue("scale", 1);
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
    this.commit(snap, { removal: true });
  }

  setMode(mode) {
    this.mode = mode;
    this.updateToolbar();
    this.requestRender();
  }

  setBrush(radius) {
    this.brush = radius;
    this.sizeValue.textContent = String(radius);
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
    updateToolbar(this);
  }

  /** What the node would refuse about the saved state on this image (made for another image, or loaded). */
  outsideImage() {
    const size = this.imageSize();
    return size ? outsideWarning(this.state, size) ?? limitProblem(this.state, size) : null;
  }

  // -- image ---------------------------------------------------------------------------------------------
  /** Re-read the widgets and the image sources (cheap when nothing changed). */
  refresh() {
    this.adoptSuccessor();
    this.root.dataset.dragonNodeId = String(this.node.id); // ids are given when the node joins a graph
    this.syncFromWidgets();
    const source = sourceForInput(this.node, "image");
    if (!source.url) this.placeholder = this.spec.json ? [...source.why, "The editor_json text box still works."] : source.why;
    this.slot.show(source.url);
    if (this.paste) this.refreshReference();
  }

  /** Paste: the reference object's box (from a Dragon Box to Mask feeding reference_mask) and its image. */
  refreshReference() {
    const up = upstreamNode(this.node, "reference_mask");
    const value = (name) => Number(up?.widgets?.find((w) => w.name === name)?.value);
    let box = null;
    if ((up?.comfyClass || up?.type) === "DragonBoxToMask") {
      box = ["x", "y", "width", "height"].map(value);
      if (!box.every(Number.isFinite)) box = null;
    }
    this.paste.box = box;
    this.paste.why = box ? null : up
      ? "The outline shows for a mask made by “Dragon Box to Mask”; dx, dy and scale still work as numbers."
      : "Connect the reference object's mask (e.g. Dragon Box to Mask) to “reference_mask”.";
    this.referenceSlot.show(sourceForInput(this.node, "reference_image").url);
    this.updateToolbar();
    this.requestRender();
  }

  onImage(image, status) {
    const d = this.root.dataset;
    d.imageStatus = status;
    d.imageUrl = this.slot.url ?? "";
    d.imageWidth = image ? String(image.naturalWidth) : "";
    d.imageHeight = image ? String(image.naturalHeight) : "";
    if (status === "error") this.placeholder = ["Could not load the image preview.", "The editor_json text box still works."];
    if (image && status === "ready") {
      const longest = Math.max(image.naturalWidth, image.naturalHeight);
      if (this.brush == null) this.brush = clamp(Math.round(longest / 24), 2, 64);
      // at most a quarter of the image's longest side, and never more than the node allows (the image's size)
      const max = Math.min(longest, Math.max(8, Math.round(longest / 4)));
      this.sizeInput.max = String(max);
      this.brush = clamp(this.brush, 1, max);
      this.sizeInput.value = String(this.brush);
      this.sizeValue.textContent = String(this.brush);
    }
    this.maskDirty = true;
    this.updateToolbar();
    this.requestRender();
  }

  // -- geometry ------------------------------------------------------------------------------------------
  imageSize() {
    return this.image ? [this.image.naturalWidth, this.image.naturalHeight] : null;
  }

  toCss(x, y) {
    const { s, ox, oy } = this.view;
    return [ox + x * s, oy + y * s];
  }

  toCssRect([x, y, w, h]) {
    const [cx, cy] = this.toCss(x, y);
    return [cx, cy, w * this.view.s, h * this.view.s];
  }

  objectBounds() {
    return regionBounds(this.state, this.imageSize());
  }

  /** Where Move's arrow starts: the centre of the object's bounds, or of the image. */
  arrowOrigin() {
    const b = this.objectBounds();
    if (b) return [b[0] + b[2] / 2, b[1] + b[3] / 2];
    const [w, h] = this.imageSize();
    return [w / 2, h / 2];
  }

  // -- drawing and life cycle ----------------------------------------------------------------------------
  requestRender() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      render(this);
    });
  }

  dispose() {
    this.resizeObserver.disconnect();
    clearTimeout(this.noticeTimer);
    if (this.frame) cancelAnimationFrame(this.frame);
    this.frame = 0;
  }
}
