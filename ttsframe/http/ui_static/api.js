// Talking to the ttsframe API: the Bearer key, JSON, and the server's own error messages.

const KEY_NAME = "ttsframe.apiKey";

/** The key lives in sessionStorage only: gone when the tab closes, never in a URL. */
export function getKey() {
  return sessionStorage.getItem(KEY_NAME) || "";
}

export function setKey(key) {
  if (key) {
    sessionStorage.setItem(KEY_NAME, key);
  } else {
    sessionStorage.removeItem(KEY_NAME);
  }
}

/** An HTTP error carrying the server's `detail` message and the status. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function errorFrom(response) {
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (typeof body.detail === "string") {
      message = body.detail;
    } else if (body.detail && typeof body.detail.message === "string") {
      message = body.detail.message;
    } else if (body.detail) {
      message = JSON.stringify(body.detail);
    }
  } catch {
    // not JSON: keep the status line
  }
  if (response.status === 403) {
    // The server names the route and the setting; the page names what to do here.
    message = "This needs an admin key: enter one with “API key” at the top of the page.";
  }
  return new ApiError(response.status, message);
}

const listeners = new Set();

/** `fn(error)` runs whenever the server answers 401 or 403 (the page asks for a key). */
export function onAuthError(fn) {
  listeners.add(fn);
}

/** fetch() with the key, raising ApiError with the server's message on any error. */
export async function raw(path, { method = "GET", json, body, signal, headers = {} } = {}) {
  const sent = { ...headers };
  const key = getKey();
  if (key) {
    sent.Authorization = `Bearer ${key}`;
  }
  if (json !== undefined) {
    sent["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  const response = await fetch(path, { method, headers: sent, body, signal,
                                       credentials: "same-origin", cache: "no-store" });
  if (!response.ok) {
    const error = await errorFrom(response);
    if (response.status === 401 || response.status === 403) {
      for (const fn of listeners) {
        fn(error);
      }
    }
    throw error;
  }
  return response;
}

export async function getJSON(path, options) {
  return (await raw(path, options)).json();
}

export async function sendJSON(method, path, json) {
  return (await raw(path, { method, json })).json();
}

/** A Blob of an authenticated download (links cannot carry the Bearer header). */
export async function getBlob(path) {
  return (await raw(path)).blob();
}
