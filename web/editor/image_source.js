// Where the editor's picture comes from: the node feeding an IMAGE input (through Reroutes), and for that
// node the file Load Image points at, the image its last run showed, or the Dragon Demo Model's example
// (served by the pack's route, so it shows before the first run). Connectivity is read only through
// node.isInputConnected / node.getInputNode (never input.link).

const { app } = window.comfyAPI.app;
const { api } = window.comfyAPI.api;

/** The route nodes/demo_nodes.py registers: the demo model's example scene as PNG, by name. */
export const DEMO_EXAMPLE_ROUTE = "/dragondiffusion/demo_example";

/** Annotated LoadImage value ("sub/dir/name.png [input]") -> /view parameters. */
export function parseAnnotatedPath(value) {
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

/** The node feeding input `name` of `node`, through front-end Reroute nodes, or null. */
export function upstreamNode(node, name) {
  let current = node;
  let slot = node.inputs?.findIndex((input) => input.name === name) ?? -1;
  for (let depth = 0; depth < 32 && slot >= 0; depth++) {
    if (!current.isInputConnected(slot)) return null;
    const up = current.getInputNode(slot);
    if (!up) return null;
    if (up.type !== "Reroute") return up;
    current = up;
    slot = 0;
  }
  return null;
}

/** {url} of the image `up` gives, or {url: null, why: [lines]}. No queueing needed for Load Image or the demo. */
export function imageSourceOf(up) {
  const kind = up.comfyClass || up.type;
  if (kind === "DragonDemoModel") {
    // Its example is a pure function of the widget: the route gives it before a run and stays right after
    // the widget changes (a run's preview would be stale until the next run).
    const example = up.widgets?.find((w) => w.name === "example")?.value;
    if (typeof example === "string" && example) {
      return { url: api.apiURL(`${DEMO_EXAMPLE_ROUTE}?${new URLSearchParams({ name: example })}`) };
    }
  }
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

/** {url} or {url: null, why} for input `name` of `node`. */
export function sourceForInput(node, name, what = "Load Image") {
  const up = upstreamNode(node, name);
  if (!up) return { url: null, why: ["No image connected.", `Connect ${what} to “${name}”.`] };
  return imageSourceOf(up);
}

/** Loads one URL at a time into an HTMLImageElement; calls onChange(image|null, status) when it settles. */
export class ImageSlot {
  constructor(onChange) {
    this.onChange = onChange;
    this.url = null;
    this.image = null;
    this.status = "none"; // none | loading | ready | error
  }

  show(url) {
    if (!url) {
      if (this.status === "none") return;
      this.url = null;
      this.image = null;
      this.status = "none";
      this.onChange(null, this.status);
      return;
    }
    if (url === this.url) return;
    this.url = url;
    this.status = "loading";
    this.onChange(this.image, this.status);
    const img = new Image();
    img.decoding = "async";
    img.onload = () => {
      if (this.url !== url) return;
      this.image = img;
      this.status = "ready";
      this.onChange(img, this.status);
    };
    img.onerror = () => {
      if (this.url !== url) return;
      this.image = null;
      this.status = "error";
      this.onChange(null, this.status);
    };
    img.src = url;
  }
}
