// Talking to the server: JSON requests, the API key, and the server-sent events of a streamed answer.
//
// When the server has an API key, a request answered 401 asks for it once (through the prompt that
// `setKeyPrompt` installs), keeps it in sessionStorage (this tab only, gone when it closes) and retries;
// every request then sends `Authorization: Bearer <key>`.

const KEY_STORAGE = "rag.apiKey";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

let keyPrompt = async () => {
  throw new ApiError(401, "this server needs an API key");
};
let pendingKey = null; // one prompt at a time, shared by the requests that need it

/** `prompt(message)` resolves to the key the user typed (message: why the last one failed, or null). */
export function setKeyPrompt(prompt) {
  keyPrompt = prompt;
}

export function storedKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

async function newKey(rejected, message) {
  if (storedKey() !== rejected) return; // another request already got a new key: just retry
  if (!pendingKey) {
    pendingKey = keyPrompt(rejected ? message : null)
      .then((key) => sessionStorage.setItem(KEY_STORAGE, key.trim()))
      .finally(() => {
        pendingKey = null;
      });
  }
  await pendingKey;
}

/** The error message of a failed response (the server's `{"error": {"message"}}`, else the status). */
export async function errorMessage(response) {
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) return String(body.error.message);
  } catch {
    // not JSON
  }
  return `${response.status} ${response.statusText || "error"}`;
}

/**
 * `fetch` with the API key; `json` is sent as the JSON body. Resolves to the response when it is OK, else
 * throws an ApiError with the server's message.
 */
export async function request(path, { method = "GET", json, body, signal } = {}) {
  for (;;) {
    const headers = {};
    const key = storedKey();
    if (key) headers.Authorization = `Bearer ${key}`;
    let payload = body;
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(json);
    }
    const response = await fetch(path, { method, headers, body: payload, signal });
    if (response.status === 401) {
      await newKey(key, await errorMessage(response));
      continue;
    }
    if (!response.ok) throw new ApiError(response.status, await errorMessage(response));
    return response;
  }
}

export async function getJSON(path) {
  return (await request(path)).json();
}

/** The named server-sent events of a response, as `{event, data}` with `data` parsed from JSON. */
export async function* serverEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
    const blocks = buffer.split(/\r?\n\r?\n/);
    buffer = done ? "" : blocks.pop();
    for (const block of blocks) {
      const parsed = parseEvent(block);
      if (parsed) yield parsed;
    }
    if (done) return;
  }
}

function parseEvent(block) {
  let event = "message";
  const data = [];
  for (const line of block.split(/\r?\n/)) {
    if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  if (!data.length) return null;
  return { event, data: JSON.parse(data.join("\n")) };
}
