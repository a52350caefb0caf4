// Glue between the editors and ComfyUI's nodes: the DOM widgets (addDOMWidget), per-node callbacks chained
// on the node instance (never on a prototype), and the memory-bank text of DragonDDIMInversion.

import { DragonEditor } from "./editor.js";
import { clamp } from "./state.js";
import { el, ensureStylesheet } from "./toolbar.js";

const EDITOR_WIDGET = "dragon_editor";
const BANK_WIDGET = "dragon_bank_info";
const EDITOR_INPUTS = ["editor_json", "dx", "dy", "scale"];

/** Live editors (their nodes are in a graph), refreshed on the front end's events. */
export const editors = new Set();

/** Run `after` after obj[name] (an instance callback), keeping what was there. */
function chainCallback(obj, name, after) {
  const original = obj[name];
  obj[name] = function (...args) {
    const result = original?.apply(this, args);
    try {
      after.apply(this, args);
    } catch (error) {
      console.error(`[DragonDiffusion] ${name}:`, error);
    }
    return result;
  };
}

function forget(editor) {
  editors.delete(editor);
  editor.dispose();
}

export function refreshAll() {
  for (const editor of editors) {
    editor.adoptSuccessor();
    if (!editor.isLive()) {
      if (!editor.root.isConnected) forget(editor); // gone for good
      continue;
    }
    try {
      editor.refresh();
    } catch (error) {
      editors.delete(editor);
      console.error("[DragonDiffusion] editor stopped:", error);
    }
  }
}

export function attachEditor(node) {
  if (node.dragonEditor) return;
  const editor = new DragonEditor(node);
  node.dragonEditor = editor;
  const widget = node.addDOMWidget(EDITOR_WIDGET, EDITOR_WIDGET, editor.root, {
    serialize: false,
    // Shown at every zoom: a template opened by a fit-to-view (the newer front ends) lands below the
    // low-quality zoom, where a hidden editor would be a grey box.
    hideOnZoom: false,
    getValue: () => "",
    setValue: () => {},
    getMinHeight: () => 250,
  });
  widget.serialize = false; // not part of widgets_values: editor_json and dx/dy/scale are the saved state
  // The editor is the main way to fill editor_json: keep the raw JSON text box small (classic renderer).
  const json = editor.widget("editor_json");
  if (json?.options) {
    json.options.getMinHeight = () => 44;
    json.options.getMaxHeight = () => 96;
  }
  // A widget changed by hand, by a load or by ComfyUI's undo: the editor re-reads it.
  for (const name of EDITOR_INPUTS) {
    const w = editor.widget(name);
    if (w) chainCallback(w, "callback", () => editor.syncFromWidgets());
  }
  chainCallback(node, "onConnectionsChange", () => setTimeout(() => editor.refresh(), 0));
  chainCallback(node, "onConfigure", () => setTimeout(() => editor.refresh(), 0));
  chainCallback(node, "onAdded", () => {
    editors.add(editor);
    editor.refresh();
  });
  chainCallback(node, "onRemoved", () => {
    // kept in `editors` while its element is shown: it may take over the node's successor (adoptSuccessor)
    if (!editor.root.isConnected) forget(editor);
  });
  editors.add(editor);
  const [w, h] = node.size;
  node.setSize([Math.max(w, 420), Math.max(h, 600)]);
  editor.refresh();
}

export function attachBankInfo(node) {
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

/** Show the `text` of a DragonDDIMInversion run's ui output (always as text, never as markup). */
export function showBankInfo(node, output) {
  const box = node.dragonBankInfo;
  if (!box) return;
  const text = output?.text;
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
