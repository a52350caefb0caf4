// DragonDiffusion on-node editor for ComfyUI's front end (1.32 and newer), classic and Vue ("Nodes 2.0")
// renderers. This file only registers the extension; the editor lives in ./editor/ (ES modules, no build):
//   state.js         editor_json: parse, serialize, limits, the kinds of editor
//   history.js       one undo history through ComfyUI's change tracker
//   image_source.js  which image to show (Load Image, a run's preview, the demo model's example)
//   toolbar.js       the DOM: tools, actions, status line
//   drawing.js       the <canvas>: image, mask, boxes, pairs, arrows, outlines
//   input.js         pointer gestures and keyboard shortcuts
//   editor.js        one editor: state <-> widgets
//   widget.js        the DOM widgets on the nodes
// DragonEditDrag / Move / Appearance edit editor_json (points, boxes, painted mask in ORIGINAL image pixels,
// docs/ARCHITECTURE.md); Move's arrow and Paste's outline write dx/dy (and Paste's scale). DragonDDIMInversion
// gets a small text widget with the memory bank size its run reports (ui.text).
// Only documented front-end hooks are used: app.registerExtension's nodeCreated / loadedGraphNode / setup and
// the api's events; nothing is patched on a prototype and nothing polls.

import { KINDS } from "./editor/state.js";
import { attachBankInfo, attachEditor, refreshAll, showBankInfo } from "./editor/widget.js";

const { app } = window.comfyAPI.app;
const { api } = window.comfyAPI.api;

/** The node an "executed" event is about (its id may carry a subgraph path "a:b"). */
function executedNode(detail) {
  const id = String(detail?.display_node ?? detail?.node ?? "");
  const last = id.split(":").pop();
  return app.graph?.getNodeById?.(Number(last)) ?? app.graph?.getNodeById?.(last) ?? null;
}

app.registerExtension({
  name: "DragonDiffusion.Editor",

  async setup() {
    api.addEventListener("executed", ({ detail }) => {
      const node = executedNode(detail);
      if (node?.dragonBankInfo) showBankInfo(node, detail.output);
      setTimeout(refreshAll, 0); // a run's preview may be the image an editor shows
    });
    // The change tracker's event after any graph change (a Load Image file picked, an undo, a paste).
    api.addEventListener("graphChanged", () => refreshAll());
  },

  nodeCreated(node) {
    const kind = node.comfyClass || node.type;
    if (KINDS[kind]) attachEditor(node);
    else if (kind === "DragonDDIMInversion") attachBankInfo(node);
  },

  loadedGraphNode(node) {
    node.dragonEditor?.refresh();
  },
});
