// The conversation: a question is sent to POST /ask with `stream: true` and the earlier turns as history;
// the answer is shown as it is written (`token` events), then replaced by the checked answer (`done`).
// Its [n] markers become links to the passages in the sources panel. An answer the server recorded (it has a
// `question_id`: setting record_questions) gets two buttons, helpful / not helpful, sent to POST /feedback.
//
// Model output is untrusted: it is split around its [n] markers and every piece goes in as a text node.

import { ApiError, request, serverEvents } from "./api.js";
import { append, el, replace } from "./dom.js";
import { clearSources, showSources, showing, sourceId } from "./sources.js";

const MARKER = /\[\s*(\d{1,3}(?:\s*[,，]\s*\d{1,3})*)\s*\]/g;
const MAX_HISTORY = 6; // turns sent with a follow-up (the server's OpenAI route keeps as many)
const MAX_ANSWER_CHARS = 32000; // the server's limit on one turn's answer in the history

const turns = [];
let controller = null; // aborts the answer being streamed

const $ = (id) => document.getElementById(id);

export function setUpConversation() {
  const form = $("ask-form");
  const question = $("question");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    ask(question.value);
  });
  question.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  $("stop-button").addEventListener("click", () => controller && controller.abort());
  $("new-button").addEventListener("click", () => {
    if (controller) controller.abort();
    turns.length = 0;
    replace($("conversation"));
    $("conversation-empty").hidden = false;
    clearSources();
    question.focus();
  });
}

function history() {
  return turns
    .filter((t) => t.done && t.answer)
    .slice(-MAX_HISTORY)
    .map((t) => ({ question: t.question, answer: t.answer.slice(0, MAX_ANSWER_CHARS) }));
}

async function ask(text) {
  const question = text.trim();
  if (!question || controller) return;
  const turn = { question, passages: [], citations: [], answer: "", done: false };
  const body = { question, stream: true, history: history() };
  turn.view = turnView(turn);
  turns.push(turn);
  $("conversation-empty").hidden = true;
  append($("conversation"), turn.view.item);
  turn.view.item.scrollIntoView({ block: "end" });
  $("question").value = "";
  busy(true);
  controller = new AbortController();
  try {
    const response = await request("/ask", { method: "POST", json: body, signal: controller.signal });
    for await (const { event, data } of serverEvents(response)) {
      if (event === "passages") {
        turn.passages = data.passages;
        showSources(turn);
      } else if (event === "token") {
        turn.answer += data.text;
        renderAnswer(turn);
      } else if (event === "done") {
        finish(turn, data);
      } else if (event === "error") {
        throw new ApiError(500, data.error && data.error.message ? data.error.message : "the answer failed");
      }
    }
    if (!turn.done) throw new ApiError(0, "the answer stopped before it was finished");
  } catch (error) {
    const message = error.name === "AbortError" ? "Stopped." : error.message;
    turn.view.item.classList.add("failed");
    replace(turn.view.meta, el("span", { className: "error" }, message));
    if (!turn.answer) turn.view.text.classList.add("hidden-empty");
  } finally {
    turn.view.item.classList.remove("streaming");
    controller = null;
    busy(false);
    $("question").focus();
  }
}

function busy(on) {
  $("ask-button").disabled = on;
  $("stop-button").hidden = !on;
}

function turnView(turn) {
  const text = el("div", { className: "answer-text" });
  const meta = el("p", { className: "answer-meta" });
  const item = el(
    "li",
    { className: "turn streaming" },
    el("p", { className: "question" }, turn.question),
    el("div", { className: "answer" }, text, meta),
  );
  item.addEventListener("click", (event) => {
    if (!event.target.closest("a.cite") && !showing(turn)) showSources(turn);
  });
  return { item, text, meta };
}

function finish(turn, answer) {
  turn.done = true;
  turn.answer = answer.answer;
  turn.citations = answer.citations || [];
  turn.refused = answer.refused;
  renderAnswer(turn);
  if (showing(turn)) showSources(turn);
  const notes = [];
  if (answer.refused) {
    turn.view.item.classList.add("refused");
    notes.push("No passage answers this question.");
  } else if (answer.grounding === "extractive") {
    notes.push("The model's own answer could not be checked against the passages: these are sentences quoted from them.");
  }
  if (answer.standalone_question && answer.standalone_question !== turn.question) {
    notes.push(`Searched for: ${answer.standalone_question}`);
  }
  const seconds = answer.timings && answer.timings.total_s;
  const details = [answer.generator, Number.isFinite(seconds) ? `${seconds.toFixed(1)} s` : null].filter(Boolean);
  replace(
    turn.view.meta,
    notes.map((n) => el("span", { className: "note" }, n)),
    details.length ? el("span", { className: "details" }, details.join(" · ")) : null,
    answer.question_id ? feedbackView(String(answer.question_id)) : null,
  );
}

/** "Helpful" / "Not helpful" for a recorded answer: the choice is sent to POST /feedback and shown as pressed. */
function feedbackView(questionId) {
  const status = el("span", { className: "feedback-status", role: "status" });
  const buttons = [true, false].map((helpful) =>
    el(
      "button",
      { type: "button", className: "feedback-button", dataset: { helpful: String(helpful) }, "aria-pressed": "false" },
      helpful ? "Helpful" : "Not helpful",
    ),
  );
  for (const button of buttons) {
    button.addEventListener("click", async (event) => {
      event.stopPropagation();
      const helpful = button.dataset.helpful === "true";
      buttons.forEach((b) => {
        b.disabled = true;
      });
      try {
        await request("/feedback", { method: "POST", json: { question_id: questionId, helpful } });
        buttons.forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
        status.textContent = "Thanks: noted.";
        status.classList.remove("error");
      } catch (error) {
        status.textContent = `Feedback not saved: ${error.message}`;
        status.classList.add("error");
      } finally {
        buttons.forEach((b) => {
          b.disabled = false;
        });
      }
    });
  }
  const label = el("span", { className: "feedback-label" }, "Was this answer helpful?");
  return el("span", { className: "feedback" }, label, buttons, status);
}

/** The answer text with each valid [n] as a link to passage n; everything else as text. */
function renderAnswer(turn) {
  const { text } = turn.view;
  const answer = turn.answer;
  const count = turn.passages.length;
  const nodes = [];
  let last = 0;
  for (const match of answer.matchAll(MARKER)) {
    nodes.push(answer.slice(last, match.index));
    for (const number of match[1].split(/\s*[,，]\s*/).map(Number)) {
      if (number >= 1 && number <= count) nodes.push(citeLink(turn, number, match.index));
      else nodes.push(`[${number}]`);
    }
    last = match.index + match[0].length;
  }
  nodes.push(answer.slice(last));
  replace(text, nodes);
}

function citeLink(turn, number, at) {
  const link = el(
    "a",
    { className: "cite", href: `#${sourceId(number)}`, dataset: { n: String(number) }, title: "show the passage" },
    `[${number}]`,
  );
  link.addEventListener("click", (event) => {
    event.preventDefault();
    showSources(turn, number, claimBefore(turn.answer, at));
  });
  return link;
}

/** The sentence of `answer` that ends at the marker starting at `at` (its markers removed). */
export function claimBefore(answer, at) {
  let end = at;
  // skip back over the markers and spaces that directly precede this one ("... 2017 [1][2]")
  for (;;) {
    const before = answer.slice(0, end).replace(/\s+$/, "");
    const m = before.match(/\[\s*\d{1,3}(?:\s*[,，]\s*\d{1,3})*\s*\]$/);
    if (!m) {
      end = before.length;
      break;
    }
    end = before.length - m[0].length;
  }
  const head = answer.slice(0, end).replace(/[.!?。！？]$/, "");
  const boundary = Math.max(...[".", "!", "?", "。", "！", "？", "\n"].map((c) => head.lastIndexOf(c)));
  let claim = head.slice(boundary + 1).replace(MARKER, " ").trim();
  if (!claim) {
    // a marker at the start of a sentence: the claim follows it
    claim = answer.slice(at).replace(MARKER, " ").split(/[.!?。！？\n]/)[0].trim();
  }
  return claim;
}
