// One undo history for the graph and the editor: every editor change is recorded by ComfyUI's own change
// tracker (the active workflow's changeTracker, reached through app.extensionManager.workflow), so Ctrl+Z /
// Ctrl+Y and the editor's Undo button walk the same list. The editor keeps no undo stack of its own.

const { app } = window.comfyAPI.app;

function tracker() {
  return app.extensionManager?.workflow?.activeWorkflow?.changeTracker ?? null;
}

// The newer front ends name the tracker's "record now" captureCanvasState (checkState is deprecated there);
// 1.32 has only checkState.
function capture(t) {
  if (typeof t?.captureCanvasState === "function") t.captureCanvasState();
  else t?.checkState?.();
}

/** Record the graph as it is now as one undo step (no-op when nothing changed). */
export function recordChange() {
  capture(tracker());
}

/** Undo the last graph change, editor or not. False when there was nothing to undo. */
export async function undoLast() {
  const t = tracker();
  if (!t?.undo) return false;
  capture(t); // a change made without a mouseup (keyboard, script) is recorded before stepping back
  if (!t.undoQueue?.length) return false;
  await t.undo();
  return true;
}
