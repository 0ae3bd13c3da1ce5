// Building the page's elements. Every piece of text -- document text, model output, file names, error
// messages -- goes in as a text node (textContent), never as HTML: nothing in it can become markup or run.

/**
 * A new element: `el("a", {className: "cite", href: "#s1", dataset: {n: "1"}}, "[1]")`.
 * Children are nodes or strings (strings become text nodes); attributes are set one by one, and event
 * handler attributes ("on...") are refused, so no string ever becomes code.
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.toLowerCase().startsWith("on")) throw new Error(`el: no event handler attributes (${name})`);
    if (name === "className") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  append(node, ...children);
  return node;
}

/** Append children (nodes, or strings as text nodes; null/undefined skipped). */
export function append(node, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replace all children of `node`. */
export function replace(node, ...children) {
  node.replaceChildren();
  return append(node, ...children);
}

/** "1.2 MB" */
export function formatBytes(n) {
  if (!Number.isFinite(n)) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i += 1;
  }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

/** The last part of a path ("docs/a.md" -> "a.md"). */
export function baseName(path) {
  const parts = String(path).split(/[\\/]/);
  return parts[parts.length - 1] || String(path);
}
