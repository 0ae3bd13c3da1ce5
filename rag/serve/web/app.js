// The page's entry point: tabs, the API key prompt, and loading the index info and documents.

import { ApiError, getJSON, setKeyPrompt } from "./api.js";
import { replace } from "./dom.js";
import { setUpConversation } from "./answer.js";
import { refreshDocuments, setUpDocuments, showInfo } from "./documents.js";

const $ = (id) => document.getElementById(id);

function notice(message) {
  const box = $("notice");
  replace(box, message || "");
  box.hidden = !message;
}

function promptForKey(message) {
  const dialog = $("key-dialog");
  const form = $("key-form");
  const input = $("key-input");
  const error = $("key-error");
  replace(error, message ? `${message}.` : "");
  error.hidden = !message;
  input.value = "";
  return new Promise((resolve, reject) => {
    const submit = (event) => {
      event.preventDefault();
      if (!input.value.trim()) return;
      done();
      resolve(input.value);
    };
    const cancel = () => {
      done();
      reject(new ApiError(401, "this server needs its API key: reload the page to enter it"));
    };
    const done = () => {
      form.removeEventListener("submit", submit);
      dialog.removeEventListener("cancel", cancel);
      if (dialog.open) dialog.close();
    };
    form.addEventListener("submit", submit);
    dialog.addEventListener("cancel", cancel);
    dialog.showModal();
    input.focus();
  });
}

function selectView(name) {
  for (const [tab, view] of [["tab-ask", "view-ask"], ["tab-docs", "view-docs"]]) {
    const on = view === name;
    $(tab).setAttribute("aria-selected", on ? "true" : "false");
    $(view).hidden = !on;
  }
  if (name === "view-docs") refresh();
  else $("question").focus();
}

async function refreshInfo() {
  try {
    showInfo(await getJSON("/info"));
  } catch (error) {
    if (error.status === 503) showInfo(null); // no index yet
    else throw error;
  }
}

async function refresh() {
  try {
    await Promise.all([refreshInfo(), refreshDocuments()]);
    notice("");
  } catch (error) {
    notice(error.message);
  }
}

function start() {
  setKeyPrompt(promptForKey);
  setUpConversation();
  setUpDocuments(refresh);
  $("tab-ask").addEventListener("click", () => {
    history.replaceState(null, "", "#ask");
    selectView("view-ask");
  });
  $("tab-docs").addEventListener("click", () => {
    history.replaceState(null, "", "#documents");
    selectView("view-docs");
  });
  window.addEventListener("unhandledrejection", (event) => notice(event.reason && event.reason.message));
  selectView(location.hash === "#documents" ? "view-docs" : "view-ask");
  refresh();
}

start();
