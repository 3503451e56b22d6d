// Frames that carry only what changed in a panel (opspulse/live/frames.py).
//
// A frame that starts with "{" opens with one line of JSON, {"patch": {panel id: [digest,
// ops]}}, followed by HTML as in any other frame (whole panels, feed rows). An op sets a
// text node ([node, text]) or an attribute ([node, name, value]), or edits a long
// attribute ([node, name, [start, end, text, …]]); `node` counts the panel's elements and
// text nodes in document order, the panel first. Before applying a patch the page
// checks that its panel is the one the server patched (the digest); if not, or if the
// panel is gone, it asks for the panel whole instead of guessing.

// Elements whose content belongs to the page's scripts (a chart's canvas).
const OPAQUE = "data-chart-mount";
// A panel asked for again is not asked for again this soon: patches built before the
// request reached the server fail the same way until its whole panel arrives.
const RESYNC_PAUSE_MS = 5_000;

let crcTable = null;

function crc32(bytes) {
  if (crcTable === null) {
    crcTable = new Int32Array(256);
    for (let n = 0; n < 256; n += 1) {
      let c = n;
      for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c;
    }
  }
  let crc = -1;
  for (const byte of bytes) crc = crcTable[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

/** The panel's elements and text nodes in document order, as the server numbers them. */
function nodesOf(panel) {
  const nodes = [];
  const visit = (node) => {
    nodes.push(node);
    if (node.nodeType !== Node.ELEMENT_NODE || node.hasAttribute(OPAQUE)) return;
    for (const child of node.childNodes) {
      if (child.nodeType === Node.ELEMENT_NODE || (child.nodeType === Node.TEXT_NODE && child.data !== "")) {
        visit(child);
      }
    }
  };
  visit(panel);
  return nodes;
}

/** The CRC-32 of the nodes, spelt as the server spells them (frames.digest). */
function digest(nodes) {
  const parts = [];
  for (const node of nodes) {
    if (node.nodeType === Node.TEXT_NODE) {
      parts.push(`\u0004${node.data}`);
      continue;
    }
    parts.push(`\u0001${node.localName.toLowerCase()}`);
    const attributes = Array.from(node.attributes, (a) => [a.name.toLowerCase(), a.value])
      .filter(([name]) => name !== "class" && name !== "style" && !name.startsWith("hx-"))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    for (const [name, value] of attributes) parts.push(`\u0002${name}\u0003${value}`);
  }
  return crc32(new TextEncoder().encode(parts.join("")));
}

function attributeNamed(element, name) {
  return Array.from(element.attributes).find((a) => a.name.toLowerCase() === name)?.name ?? null;
}

/** Apply `ops` to the panel's `nodes`, all or none; false if one of them does not fit. */
function applyOps(nodes, ops) {
  const changes = [];
  for (const op of ops) {
    const node = nodes[op[0]];
    if (!node) return false;
    if (op.length === 2) {
      if (node.nodeType !== Node.TEXT_NODE || typeof op[1] !== "string") return false;
      changes.push(() => {
        node.data = op[1];
      });
      continue;
    }
    const name = node.nodeType === Node.ELEMENT_NODE ? attributeNamed(node, op[1]) : null;
    if (name === null) return false;
    let value = op[2];
    if (Array.isArray(value)) {
      const edits = value;
      value = node.getAttribute(name);
      // From the end, so that each edit's offsets still count in the old value.
      for (let i = edits.length - 3; i >= 0; i -= 3) {
        value = value.slice(0, edits[i]) + edits[i + 2] + value.slice(edits[i + 1]);
      }
    }
    changes.push(() => node.setAttribute(name, value));
  }
  for (const change of changes) change();
  return true;
}

/**
 * Split a frame into its patches ({} if none) and the HTML that follows them.
 */
export function splitFrame(frame) {
  if (!frame.startsWith("{")) return { patches: {}, html: frame };
  const end = frame.indexOf("\n");
  const head = JSON.parse(end < 0 ? frame : frame.slice(0, end));
  return { patches: head.patch ?? {}, html: end < 0 ? "" : frame.slice(end + 1) };
}

/**
 * Patches for one socket: applies them and asks the server, through `send`, for the panels
 * it could not patch (at most once per RESYNC_PAUSE_MS each).
 */
export class Patcher {
  constructor() {
    this.askedAt = new Map();
  }

  /** Apply the frame's patches; return the HTML left to swap in. */
  apply(frame, send) {
    const { patches, html } = splitFrame(frame);
    const failed = [];
    for (const [id, [expected, ops]] of Object.entries(patches)) {
      const panel = document.getElementById(id);
      const nodes = panel ? nodesOf(panel) : null;
      if (nodes && digest(nodes) === expected && applyOps(nodes, ops)) continue;
      failed.push(id);
    }
    const now = Date.now();
    const ask = failed.filter((id) => !(now - (this.askedAt.get(id) ?? -Infinity) < RESYNC_PAUSE_MS));
    if (ask.length) {
      for (const id of ask) this.askedAt.set(id, now);
      console.warn(`live: ${ask.join(", ")} differ from the server's; asking for them whole`);
      send(JSON.stringify({ resync: ask }));
    }
    return html;
  }

  /** A new socket starts with whole panels: nothing is pending any more. */
  reset() {
    this.askedAt.clear();
  }
}
