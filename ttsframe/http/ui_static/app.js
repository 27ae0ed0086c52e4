// The page's entry point: tabs, the API key, and loading what the server has.

import { ApiError, getJSON, getKey, onAuthError, setKey } from "./api.js";
import { $, say } from "./dom.js";
import { initClone } from "./clone.js";
import { initLive } from "./live.js";
import { initManage } from "./manage.js";
import { initSpeak } from "./speak.js";
import { initText } from "./text.js";

const state = {
  meta: null,
  voices: [],
  listeners: { voices: [], meta: [] },
};

/** Shared with the views: the server's facts, and a way to reload the voice list. */
export const app = {
  get meta() {
    return state.meta;
  },
  get voices() {
    return state.voices;
  },
  onVoices(fn) {
    state.listeners.voices.push(fn);
  },
  onMeta(fn) {
    state.listeners.meta.push(fn);
  },
  async reloadVoices() {
    const reply = await getJSON("/voices");
    state.voices = reply.voices;
    for (const fn of state.listeners.voices) {
      fn(state.voices);
    }
    return state.voices;
  },
  showTab,
  askForKey,
};

// ------------------------------------------------------------------------- tabs

const tabs = () => [...document.querySelectorAll('[role="tab"]')];
const tabListeners = [];

function showTab(name, { focus = false } = {}) {
  for (const tab of tabs()) {
    const selected = tab.id === `tab-${name}`;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    document.getElementById(tab.getAttribute("aria-controls")).hidden = !selected;
    if (selected && focus) {
      tab.focus();
    }
  }
  for (const fn of tabListeners) {
    fn(name);
  }
}

export function onTab(fn) {
  tabListeners.push(fn);
}

function initTabs() {
  for (const tab of tabs()) {
    tab.addEventListener("click", () => showTab(tab.id.slice(4)));
    tab.addEventListener("keydown", (event) => {
      const all = tabs();
      const at = all.indexOf(tab);
      const moves = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: all.length - 1 };
      if (!(event.key in moves)) {
        return;
      }
      event.preventDefault();
      const next = all[(moves[event.key] + all.length) % all.length];
      showTab(next.id.slice(4), { focus: true });
    });
  }
}

// ---------------------------------------------------------------------- API key

const dialog = () => $("#key-dialog");

function askForKey(reason) {
  say($("#key-reason"), reason);
  say($("#key-error"), "");
  $("#key-input").value = "";
  if (!dialog().open) {
    dialog().showModal();
  }
  $("#key-input").focus();
}

function initKeyDialog() {
  $("#key-button").addEventListener("click", () => askForKey(
    getKey() ? "A key is set for this tab. Enter another one to replace it."
             : "Enter a key if this server needs one."));
  $("#key-cancel").addEventListener("click", () => dialog().close());
  $("#key-forget").addEventListener("click", () => {
    setKey("");
    say($("#key-error"), "");
    say($("#key-reason"), "The key was forgotten.");
    updateKeyButton();
  });
  $("#key-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = $("#key-input").value.trim();
    if (!key) {
      say($("#key-error"), "Type a key first.", "error");
      return;
    }
    const previous = getKey();
    setKey(key);
    try {
      await loadMeta();
    } catch (error) {
      setKey(previous);
      const refused = error instanceof ApiError && error.status === 401;
      say($("#key-error"), refused ? `The server refused this key: ${error.message}`
                                   : error.message, "error");
      $("#key-input").select();
      return;
    }
    dialog().close();
    updateKeyButton();
    say($("#server-state"), "Connected");
    await app.reloadVoices().catch(() => {});
  });
  onAuthError((error) => {
    if (error.status === 401) {
      askForKey(getKey() ? `The server refused the key: ${error.message}`
                         : "This server needs an API key.");
    }
  });
}

function updateKeyButton() {
  $("#key-button").textContent = getKey() ? "API key (set)" : "API key";
}

// ------------------------------------------------------------------------- boot

async function loadMeta() {
  state.meta = await getJSON("/ui/meta");
  for (const fn of state.listeners.meta) {
    fn(state.meta);
  }
  return state.meta;
}

async function boot() {
  initTabs();
  initKeyDialog();
  updateKeyButton();
  initSpeak(app);
  initLive();
  initClone(app);
  initManage(app, onTab);
  initText(app, onTab);
  try {
    await loadMeta();
    await app.reloadVoices();
    say($("#server-state"), "Connected");
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) {
      say($("#server-state"), `Cannot reach the server: ${error.message}`, "error");
    } else {
      say($("#server-state"), "Waiting for an API key");
    }
  }
  document.body.dataset.ready = "true";
}

boot();
