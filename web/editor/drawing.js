// Drawing the editor's <canvas>: the image fitted (contain, centred), the tinted mask, boxes, handle/target
// pairs, Move's arrow and ghost, the pasted object's outline, the brush cursor and the placeholder.
// User data is only ever drawn here, never put into the DOM as markup.

import { clamp } from "./state.js";

export const HANDLE_RADIUS = 9;

/** Size the canvas backing store to its CSS box and fit the image: sets ed.view {cssW, cssH, dpr, s, ox, oy}. */
export function layout(ed) {
  const canvas = ed.canvas;
  const cssW = canvas.clientWidth;
  const cssH = canvas.clientHeight;
  const dpr = Math.max(1, window.devicePixelRatio || 1);
  const bw = Math.max(1, Math.round(cssW * dpr));
  const bh = Math.max(1, Math.round(cssH * dpr));
  if (canvas.width !== bw || canvas.height !== bh) {
    canvas.width = bw;
    canvas.height = bh;
  }
  const v = { cssW, cssH, dpr, s: 1, ox: 0, oy: 0 };
  const size = ed.imageSize();
  if (size) {
    const [w, h] = size;
    v.s = Math.min(cssW / w, cssH / h) || 1;
    v.ox = (cssW - w * v.s) / 2;
    v.oy = (cssH - h * v.s) / 2;
  }
  const old = ed.view;
  if (old.s !== v.s || old.ox !== v.ox || old.oy !== v.oy || old.dpr !== v.dpr) ed.maskDirty = true;
  ed.view = v;
  return v;
}

const tintOf = (ed) => `rgb(${ed.spec.tint.join(",")})`;

/** The painted/boxed mask at display resolution (device px of the image rectangle), in the tint colour. */
function rebuildMask(ed) {
  const [w, h] = ed.imageSize();
  const { s, dpr } = ed.view;
  const mw = Math.max(1, Math.round(w * s * dpr));
  const mh = Math.max(1, Math.round(h * s * dpr));
  ed.mask.width = mw;
  ed.mask.height = mh;
  const ctx = ed.mask.getContext("2d");
  ctx.clearRect(0, 0, mw, mh);
  ed.maskScale = mw / w;
  ctx.fillStyle = tintOf(ed);
  const k = ed.maskScale;
  for (const [x, y, bw, bh] of ed.state.boxes) ctx.fillRect(x * k, y * k, bw * k, bh * k);
  for (const dab of ed.state.strokes) paintMaskDab(ed, dab, ctx);
  ed.maskDirty = false;
}

/** Add one brush dab to the mask (incrementally while painting; a full rebuild follows when dirty). */
export function paintMaskDab(ed, [x, y, r, paint], ctx = null) {
  if (!ctx) {
    if (ed.maskDirty) return; // rebuilt in full on the next frame
    ctx = ed.mask.getContext("2d");
    ctx.fillStyle = tintOf(ed);
  }
  const k = ed.maskScale;
  ctx.globalCompositeOperation = paint ? "source-over" : "destination-out";
  ctx.beginPath();
  ctx.arc(x * k, y * k, r * k, 0, Math.PI * 2);
  ctx.fill();
  ctx.globalCompositeOperation = "source-over";
}

export function render(ed) {
  const v = layout(ed);
  const ctx = ed.canvas.getContext("2d");
  ctx.setTransform(v.dpr, 0, 0, v.dpr, 0, 0);
  ctx.clearRect(0, 0, v.cssW, v.cssH);
  ctx.fillStyle = "#18191c";
  ctx.fillRect(0, 0, v.cssW, v.cssH);
  if (!ed.image) {
    drawPlaceholder(ctx, v, ed.imageStatus === "loading" ? ["Loading image…"] : ed.placeholder);
    return;
  }
  const [w, h] = ed.imageSize();
  ctx.imageSmoothingEnabled = v.s < 2;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(ed.image, v.ox, v.oy, w * v.s, h * v.s);
  ctx.imageSmoothingEnabled = true;
  if (ed.kind === "DragonEditPaste") {
    drawPaste(ed, ctx, v);
    return;
  }
  if (ed.maskDirty) rebuildMask(ed);
  if (ed.kind === "DragonEditMove") drawMoveGhost(ed, ctx, v);
  ctx.globalAlpha = 0.42;
  ctx.drawImage(ed.mask, v.ox, v.oy, w * v.s, h * v.s);
  ctx.globalAlpha = 1;
  for (const b of ed.state.boxes) drawBox(ed, ctx, b, "#ffffff");
  const g = ed.gesture;
  if (g?.type === "box") {
    const x0 = Math.min(g.start[0], g.end[0]), y0 = Math.min(g.start[1], g.end[1]);
    drawBox(ed, ctx, [x0, y0, Math.abs(g.end[0] - g.start[0]), Math.abs(g.end[1] - g.start[1])], "#ffe066");
  }
  if (ed.kind === "DragonEditMove") drawMoveArrow(ed, ctx);
  ed.state.points.forEach((p, k) => drawPair(ed, ctx, p, k));
  if (ed.pending) drawHandle(ed, ctx, ed.pending, ed.state.points.length + 1, true, true);
  drawCursor(ed, ctx);
}

function drawPlaceholder(ctx, v, lines) {
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

function drawBox(ed, ctx, [x, y, w, h], color) {
  const [cx, cy] = ed.toCss(x, y);
  const { s } = ed.view;
  ctx.lineWidth = 1.5;
  ctx.setLineDash([]);
  ctx.strokeStyle = "rgba(0,0,0,0.75)";
  ctx.strokeRect(cx, cy, w * s, h * s);
  ctx.setLineDash([5, 4]);
  ctx.strokeStyle = color;
  ctx.strokeRect(cx, cy, w * s, h * s);
  ctx.setLineDash([]);
}

function arrow(ctx, [x0, y0], [x1, y1], color, width) {
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

function disc(ctx, [x, y], r, fill) {
  ctx.beginPath();
  ctx.arc(x, y, r, 0, Math.PI * 2);
  ctx.fillStyle = fill;
  ctx.fill();
}

function drawHandle(ed, ctx, [x, y], label, pending, selected) {
  const c = ed.toCss(x, y);
  disc(ctx, c, HANDLE_RADIUS + 2, selected ? "#ffe066" : "rgba(0,0,0,0.75)");
  disc(ctx, c, HANDLE_RADIUS, "#e5484d");
  if (pending) {
    ctx.setLineDash([3, 3]);
    ctx.strokeStyle = "#ffffff";
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    ctx.arc(c[0], c[1], HANDLE_RADIUS + 5, 0, Math.PI * 2);
    ctx.stroke();
    ctx.setLineDash([]);
  }
  ctx.fillStyle = "#ffffff";
  ctx.font = "bold 11px system-ui, sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  ctx.fillText(String(label), c[0], c[1] + 0.5);
}

function drawPair(ed, ctx, [hx, hy, tx, ty], k) {
  const selected = k === ed.selected;
  const h = ed.toCss(hx, hy);
  const t = ed.toCss(tx, ty);
  const len = Math.hypot(t[0] - h[0], t[1] - h[1]);
  if (len > 12) {
    const ux = (t[0] - h[0]) / len, uy = (t[1] - h[1]) / len;
    arrow(ctx, [h[0] + ux * 11, h[1] + uy * 11], [t[0] - ux * 7, t[1] - uy * 7], selected ? "#ffe066" : "#ffffff", 2.5);
  }
  disc(ctx, t, 7, selected ? "#ffe066" : "rgba(0,0,0,0.75)");
  disc(ctx, t, 5.5, "#3e8ef7");
  disc(ctx, t, 2, "#ffffff");
  drawHandle(ed, ctx, [hx, hy], k + 1, false, selected);
}

/** The object [x, y, w, h] scaled about its centre and moved by (dx, dy) (as the backend places it), in CSS px. */
function placedRect(ed, b, scale) {
  const [dx, dy] = ed.offset();
  const [ocx, ocy] = [b[0] + b[2] / 2, b[1] + b[3] / 2];
  const [x, y] = ed.toCss(ocx + dx - (b[2] / 2) * scale, ocy + dy - (b[3] / 2) * scale);
  return [x, y, b[2] * ed.view.s * scale, b[3] * ed.view.s * scale];
}

function clipToImage(ed, ctx, v) {
  const [w, h] = ed.imageSize();
  ctx.beginPath();
  ctx.rect(v.ox, v.oy, w * v.s, h * v.s);
  ctx.clip();
}

function dashedRect(ctx, [x, y, w, h], color) {
  ctx.setLineDash([4, 4]);
  ctx.lineWidth = 1.5;
  ctx.strokeStyle = color;
  ctx.strokeRect(x, y, w, h);
  ctx.setLineDash([]);
}

function drawMoveGhost(ed, ctx, v) {
  const [dx, dy] = ed.offset();
  const scale = ed.scale();
  const b = ed.objectBounds();
  if (!b || (dx === 0 && dy === 0 && scale === 1)) return;
  const [w, h] = ed.imageSize();
  const [ocx, ocy] = [b[0] + b[2] / 2, b[1] + b[3] / 2];
  const [gx, gy] = ed.toCss(ocx + dx - ocx * scale, ocy + dy - ocy * scale);
  ctx.save();
  clipToImage(ed, ctx, v);
  ctx.globalAlpha = 0.22;
  ctx.drawImage(ed.mask, gx, gy, w * v.s * scale, h * v.s * scale);
  ctx.globalAlpha = 1;
  dashedRect(ctx, placedRect(ed, b, scale), tintOf(ed));
  ctx.restore();
}

function drawMoveArrow(ed, ctx) {
  const [dx, dy] = ed.offset();
  const origin = ed.arrowOrigin();
  const from = ed.toCss(origin[0], origin[1]);
  const to = ed.toCss(origin[0] + dx, origin[1] + dy);
  if (dx !== 0 || dy !== 0) arrow(ctx, from, to, "#ffe066", 3);
  if (ed.objectBounds()) disc(ctx, from, 4, "#ffe066");
  if (dx !== 0 || dy !== 0) offsetLabel(ctx, dx, dy, to);
}

function offsetLabel(ctx, dx, dy, [x, y]) {
  const text = `${dx > 0 ? "+" : ""}${dx}, ${dy > 0 ? "+" : ""}${dy}`;
  ctx.font = "bold 11px system-ui, sans-serif";
  ctx.textAlign = "left";
  ctx.textBaseline = "bottom";
  ctx.lineWidth = 3;
  ctx.strokeStyle = "rgba(0,0,0,0.8)";
  ctx.strokeText(text, x + 8, y - 6);
  ctx.fillStyle = "#ffe066";
  ctx.fillText(text, x + 8, y - 6);
}

/** Paste: the reference object (its box cut from the reference image) where dx/dy/scale put it. */
function drawPaste(ed, ctx, v) {
  const p = ed.paste;
  if (!p?.box) return;
  const scale = ed.scale();
  const rect = placedRect(ed, p.box, scale);
  ctx.save();
  clipToImage(ed, ctx, v);
  dashedRect(ctx, ed.toCssRect(p.box), "rgba(255,255,255,0.55)"); // where it is in the reference
  if (p.image) {
    const [bx, by, bw, bh] = p.box;
    ctx.globalAlpha = 0.8;
    ctx.drawImage(p.image, bx, by, bw, bh, ...rect);
    ctx.globalAlpha = 1;
  }
  dashedRect(ctx, rect, tintOf(ed));
  ctx.restore();
  const [dx, dy] = ed.offset();
  const from = ed.toCss(p.box[0] + p.box[2] / 2, p.box[1] + p.box[3] / 2);
  const to = ed.toCss(p.box[0] + p.box[2] / 2 + dx, p.box[1] + p.box[3] / 2 + dy);
  if (dx !== 0 || dy !== 0) {
    arrow(ctx, from, to, "#ffe066", 2);
    offsetLabel(ctx, dx, dy, to);
  }
  const corner = [rect[0] + rect[2], rect[1] + rect[3]];
  disc(ctx, corner, 6, "rgba(0,0,0,0.8)");
  disc(ctx, corner, 4.5, tintOf(ed));
}

function drawCursor(ed, ctx) {
  if (!ed.hover || (ed.mode !== "paint" && ed.mode !== "erase")) return;
  const r = (ed.brush || 1) * ed.view.s;
  const [x, y] = ed.hover;
  ctx.lineWidth = 1.5;
  ctx.strokeStyle = "rgba(0,0,0,0.8)";
  ctx.beginPath();
  ctx.arc(x, y, r + 1, 0, Math.PI * 2);
  ctx.stroke();
  ctx.strokeStyle = "#ffffff";
  if (ed.mode === "erase") ctx.setLineDash([4, 3]);
  ctx.beginPath();
  ctx.arc(x, y, r, 0, Math.PI * 2);
  ctx.stroke();
  ctx.setLineDash([]);
}
