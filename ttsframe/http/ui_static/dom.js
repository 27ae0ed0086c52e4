// Small DOM helpers: elements are built with text content, never from HTML strings.

/** `el("button", {class: "x", onclick: fn}, "Label", child)` */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) {
      continue;
    }
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(node.dataset, value);
    } else if (value === true) {
      node.setAttribute(name, "");
    } else {
      node.setAttribute(name, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) {
      continue;
    }
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

/** Show a message in a status or alert region; `kind` is "ok", "error" or "". */
export function say(region, text, kind = "") {
  region.textContent = text;
  region.dataset.kind = kind;
}

export function formatSeconds(value) {
  return value === null || value === undefined || Number.isNaN(value)
    ? "–" : `${Number(value).toFixed(2)} s`;
}

export function formatTime(iso) {
  if (!iso) {
    return "–";
  }
  const date = new Date(iso);
  return date.toLocaleTimeString();
}

/** Offer a Blob as a file download. */
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = el("a", { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
