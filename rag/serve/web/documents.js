// The documents view: upload files (drop them, or choose them) to POST /documents and follow each upload's
// background job (GET /jobs/{id}) until it is done or failed; list the documents and delete them; show the
// index's info. File names and error messages are shown as text.

import { getJSON, request } from "./api.js";
import { append, baseName, el, formatBytes, replace } from "./dom.js";

const POLL_MS = 400;
const MAX_JOBS_SHOWN = 8;
const $ = (id) => document.getElementById(id);

let onChange = () => {};

/** `changed()` is called after an upload finishes or a document is deleted. */
export function setUpDocuments(changed) {
  onChange = changed;
  const zone = $("dropzone");
  const input = $("file-input");
  // a file dropped anywhere else must not replace the page
  for (const type of ["dragover", "drop"]) window.addEventListener(type, (event) => event.preventDefault());
  zone.addEventListener("dragenter", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    if (event.dataTransfer) event.dataTransfer.dropEffect = "copy";
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", (event) => {
    if (!zone.contains(event.relatedTarget)) zone.classList.remove("over");
  });
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    const files = [...((event.dataTransfer && event.dataTransfer.files) || [])];
    if (files.length) upload(files);
  });
  input.addEventListener("change", () => {
    const files = [...input.files];
    input.value = "";
    if (files.length) upload(files);
  });
}

async function upload(files) {
  const names = files.map((f) => f.name).join(", ");
  const status = el("span", { className: "job-status" }, "uploading…");
  const detail = el("p", { className: "job-detail" });
  const item = el("li", { className: "job running" }, el("span", { className: "job-files" }, names), status, detail);
  $("jobs").prepend(item);
  for (const old of [...$("jobs").children].slice(MAX_JOBS_SHOWN)) if (!old.classList.contains("running")) old.remove();
  const form = new FormData();
  for (const f of files) form.append("files", f, f.name);
  try {
    let job = await (await request("/documents", { method: "POST", body: form })).json();
    item.dataset.job = job.id;
    while (job.status === "queued" || job.status === "running") {
      replace(status, job.status === "queued" ? "queued…" : "ingesting…");
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      job = await getJSON(`/jobs/${job.id}`);
    }
    item.classList.remove("running");
    item.classList.add(job.status);
    if (job.status === "done") {
      replace(status, "done");
      replace(detail, reportText(job.report));
      for (const s of (job.report && job.report.skipped) || []) {
        append(detail, el("span", { className: "skipped" }, `skipped ${baseName(s.path)}: ${s.reason}`));
      }
    } else {
      replace(status, "failed");
      replace(detail, job.error || "the ingest failed");
    }
  } catch (error) {
    item.classList.remove("running");
    item.classList.add("failed");
    replace(status, "failed");
    replace(detail, error.message);
  }
  onChange();
}

function reportText(r) {
  if (!r) return "";
  const parts = [`${r.files_added} added`, `${r.files_updated} updated`, `${r.files_unchanged} unchanged`];
  if (r.skipped && r.skipped.length) parts.push(`${r.skipped.length} skipped`);
  return `${parts.join(", ")}; ${r.chunks_added} chunks added in ${Number(r.seconds).toFixed(1)} s.`;
}

/** Reload the documents list. */
export async function refreshDocuments() {
  const { documents } = await getJSON("/documents");
  documents.sort((a, b) => a.path.localeCompare(b.path));
  replace($("doc-count"), documents.length ? `(${documents.length})` : "");
  $("docs-empty").hidden = documents.length > 0;
  $("documents").hidden = documents.length === 0;
  replace($("documents-body"), documents.map(documentRow));
}

function documentRow(doc) {
  const remove = el("button", { type: "button", className: "delete secondary", "aria-label": `Delete ${doc.path}` }, "Delete");
  remove.addEventListener("click", () => deleteDocument(doc, remove));
  return el(
    "tr",
    { dataset: { id: doc.id } },
    el("td", { className: "doc-path", title: doc.path }, doc.path, doc.uploaded ? el("span", { className: "tag" }, "uploaded") : null),
    el("td", {}, doc.file_type),
    el("td", {}, doc.language),
    el("td", { className: "num" }, String(doc.chunks)),
    el("td", { className: "num" }, formatBytes(doc.size)),
    el("td", { className: "actions" }, remove),
  );
}

async function deleteDocument(doc, button) {
  const what = doc.uploaded ? "Its uploaded file is deleted too." : "The file itself is not touched.";
  if (!window.confirm(`Delete ${doc.path} from the index? ${what}`)) return;
  button.disabled = true;
  try {
    await request(`/documents/${doc.id}`, { method: "DELETE" });
  } catch (error) {
    button.disabled = false;
    throw error;
  }
  onChange();
}

const INFO_FIELDS = [
  ["documents", "Documents", String],
  ["chunks", "Passages", String],
  ["embedder", "Embedding model", String],
  ["dimension", "Dimension", String],
  ["index_type", "Vector index", String],
  ["size_bytes", "Size on disk", formatBytes],
  ["chunk_size", "Passage size (tokens)", String],
  ["chunk_overlap", "Passage overlap (tokens)", String],
  ["generation", "Generation", String],
  ["updated", "Updated", (v) => new Date(v).toLocaleString()],
  ["path", "Folder", String],
];

/** Reload the index info (and the summary in the header); null info: no index yet. */
export function showInfo(info) {
  if (!info) {
    replace($("info"), el("dt", {}, "No index yet"), el("dd", {}, "Upload documents to create one."));
    replace($("summary"), "no index yet: add documents");
    return;
  }
  replace(
    $("info"),
    INFO_FIELDS.map(([key, label, format]) => [el("dt", {}, label), el("dd", { dataset: { field: key } }, format(info[key]))]),
  );
  replace($("summary"), `${plural(info.documents, "document")} · ${plural(info.chunks, "passage")} · ${info.embedder}`);
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}
