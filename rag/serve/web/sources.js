// The sources panel: the numbered passages an answer was written from. Selecting one (by clicking its [n] in
// the answer, or the passage itself) shows it whole, with its file, location and character span, and marks
// the sentence of the passage that best matches the answer sentence that cited it.

import { append, baseName, el, replace } from "./dom.js";

const list = () => document.getElementById("sources");
const empty = () => document.getElementById("sources-empty");
const subtitle = () => document.getElementById("sources-for");

let shown = null; // the turn whose passages are shown

/**
 * Show `turn.passages` (each {number, source, location, start, end, score, text}); `selected`: the number
 * to open, `claim`: the answer sentence that cited it (to find the matching sentence in the passage).
 */
export function showSources(turn, selected = null, claim = "") {
  shown = turn;
  const passages = turn.passages || [];
  const cited = new Set((turn.citations || []).map((c) => c.number));
  empty().hidden = passages.length > 0;
  replace(
    list(),
    passages.map((p) => passageItem(p, cited.has(p.number), p.number === selected ? claim : null)),
  );
  replace(subtitle(), passages.length ? `for “${turn.question}”` : "");
  if (selected !== null) {
    const item = document.getElementById(sourceId(selected));
    if (item) {
      item.scrollIntoView({ block: "nearest" });
      item.querySelector(".source-head").focus({ preventScroll: true });
      const box = item.querySelector(".passage-text");
      const mark = item.querySelector("mark");
      // the marked sentence in view inside the passage's own scroll box
      if (box && mark) {
        const offset = mark.getBoundingClientRect().top - box.getBoundingClientRect().top;
        box.scrollTop = Math.max(0, box.scrollTop + offset - box.clientHeight / 3);
      }
    }
  }
}

/** Whether the sources of `turn` are the ones on show. */
export function showing(turn) {
  return shown === turn;
}

export function clearSources() {
  shown = null;
  replace(list());
  replace(subtitle());
  empty().hidden = false;
}

export function sourceId(number) {
  return `source-${number}`;
}

function passageItem(passage, cited, claim) {
  const open = claim !== null;
  const head = el(
    "button",
    { type: "button", className: "source-head", "aria-expanded": open ? "true" : "false", title: passage.source },
    el("span", { className: "source-number" }, `[${passage.number}]`),
    el("span", { className: "source-file" }, baseName(passage.source)),
    el("span", { className: "source-location" }, passage.location),
    el("span", { className: "source-score", title: "similarity to the question" }, score(passage.score)),
  );
  const item = el(
    "li",
    { id: sourceId(passage.number), className: `source${cited ? " cited" : ""}${open ? " open" : ""}` },
    head,
  );
  head.addEventListener("click", () => {
    if (item.classList.contains("open")) showSources(shown);
    else showSources(shown, passage.number, "");
  });
  if (!open) {
    append(item, el("p", { className: "passage-preview" }, passage.text));
    return item;
  }
  const span = claim ? bestSentence(passage.text, claim) : null;
  const [from, to] = span || [0, passage.text.length];
  const mark = el(
    "mark",
    {
      className: span ? "support" : "support whole",
      dataset: { start: String(passage.start + from), end: String(passage.start + to) },
    },
    passage.text.slice(from, to),
  );
  append(
    item,
    el(
      "p",
      { className: "passage-where" },
      el("span", { className: "passage-path" }, passage.source),
      ` · ${passage.location} · chars ${passage.start}–${passage.end}`,
    ),
    el("div", { className: "passage-text" }, passage.text.slice(0, from), mark, passage.text.slice(to)),
    el(
      "p",
      { className: "passage-note" },
      span
        ? `Marked: the sentence that best matches the answer's claim (chars ${passage.start + from}–${passage.start + to} of the file).`
        : `Marked: the whole cited passage (chars ${passage.start}–${passage.end} of the file).`,
    ),
  );
  return item;
}

function score(value) {
  return Number.isFinite(value) ? value.toFixed(2) : "";
}

// -- which sentence of the passage the answer's claim comes from ------------------------------------------

const STOPWORDS = new Set(
  ("a an and are as at be by for from has have in is it its of on or that the this to was were with which " +
    "who what when where why how 的 是 了 在 和 与 也 就 都 而 及 这 那 它").split(" "),
);
const segmenter = typeof Intl !== "undefined" && Intl.Segmenter ? new Intl.Segmenter(undefined, { granularity: "word" }) : null;

/** The content words of `text`, lower-cased (Chinese is segmented into words by the browser). */
export function words(text) {
  const out = [];
  if (segmenter) {
    for (const s of segmenter.segment(text.toLowerCase())) if (s.isWordLike) out.push(s.segment);
  } else {
    out.push(...(text.toLowerCase().match(/[\p{L}\p{N}]+/gu) || []));
  }
  return out.filter((w) => !STOPWORDS.has(w));
}

/** [start, end) of each sentence of `text` (ends: . ! ? ; before a space, 。！？；, line breaks), trimmed. */
export function sentenceSpans(text) {
  const spans = [];
  const boundary = /[.!?;](?=\s|$)|[。！？；]|\n/g;
  let start = 0;
  const push = (from, to) => {
    while (from < to && /\s/.test(text[from])) from += 1;
    while (to > from && /\s/.test(text[to - 1])) to -= 1;
    if (to > from) spans.push([from, to]);
  };
  for (const m of text.matchAll(boundary)) {
    const end = m.index + m[0].length;
    push(start, m[0] === "\n" ? m.index : end);
    start = end;
  }
  push(start, text.length);
  return spans;
}

/** The span of the sentence of `passage` that holds most of `claim`'s words (half at least), or null. */
export function bestSentence(passage, claim) {
  const wanted = new Set(words(claim));
  if (!wanted.size) return null;
  let best = null;
  let bestScore = 0;
  for (const [from, to] of sentenceSpans(passage)) {
    const have = new Set(words(passage.slice(from, to)));
    let shared = 0;
    for (const w of wanted) if (have.has(w)) shared += 1;
    const value = shared / wanted.size;
    if (value > bestScore) {
      best = [from, to];
      bestScore = value;
    }
  }
  return bestScore >= 0.5 ? best : null;
}
