// What is read: the Speak view's preview of the text after every preprocessor, and the
// pronunciation dictionary on Manage.

import { getJSON, raw, sendJSON } from "./api.js";
import { $, el, say } from "./dom.js";

let editing = null; // the id of the entry the form is changing, or null when adding
let voicesRef = [];

// ----------------------------------------------------------------------- preview

function previewBody() {
  const body = { text: $("#text").value, voice_id: $("#voice").value };
  if (!$("#backend-field").hidden) {
    body.model = $("#backend").value;
  }
  if (!$("#normalize").checked) {
    body.normalize = false;
  }
  return body;
}

async function preview() {
  const panel = $("#preview-panel");
  const summary = $("#preview-summary");
  if (!$("#text").value.trim()) {
    say($("#speak-error"), "Type some text to preview.", "error");
    return;
  }
  say($("#speak-error"), "");
  panel.hidden = false;
  say(summary, "Reading the text…");
  try {
    const reply = await sendJSON("POST", "/text/preview", previewBody());
    const chunks = reply.chunks.map((chunk) => el("li", { class: "preview-chunk" },
      el("span", { class: "chunk-text" }, chunk.text),
      chunk.pause_after_s ? el("span", { class: "hint pause" },
        ` then ${chunk.pause_after_s} s of silence`) : null));
    $("#preview-chunks").replaceChildren(...chunks);
    $("#preview-warnings").replaceChildren(
      ...reply.warnings.map((w) => el("li", { class: "warning" }, w)));
    const parts = reply.chunks.length === 1 ? "one generation" : `${reply.chunks.length} generations`;
    const lead = reply.lead_s ? `, ${reply.lead_s} s of silence first` : "";
    const speed = reply.speed !== 1 ? `, at speed ${reply.speed}` : "";
    say(summary, `${reply.backend} reads this in ${parts}${lead}${speed} with voice `
        + `${reply.voice_id}.`, "ok");
  } catch (problem) {
    $("#preview-chunks").replaceChildren();
    $("#preview-warnings").replaceChildren();
    say(summary, problem.message, "error");
  }
}

// ---------------------------------------------------------------- pronunciations

function where(entry) {
  const parts = [];
  parts.push(entry.voice_id ? `voice ${entry.voice_id}` : "every voice");
  if (entry.language) {
    parts.push(`language ${entry.language}`);
  }
  if (entry.case_sensitive) {
    parts.push("exact case");
  }
  if (!entry.whole_word) {
    parts.push("inside words too");
  }
  return parts.join(", ");
}

function fillVoiceChoice(voices) {
  voicesRef = voices;
  const select = $("#pron-voice");
  const kept = select.value;
  select.replaceChildren(el("option", { value: "" }, "Every voice"),
    ...voices.map((v) => el("option", { value: v.voice_id }, v.voice_id)));
  select.value = [...select.options].some((o) => o.value === kept) ? kept : "";
}

function resetForm() {
  editing = null;
  $("#pron-form").reset();
  $("#pron-save").textContent = "Add pronunciation";
  $("#pron-cancel").hidden = true;
}

function startEdit(entry) {
  editing = entry.id;
  $("#pron-term").value = entry.term;
  $("#pron-spoken").value = entry.spoken;
  $("#pron-case").checked = entry.case_sensitive;
  fillVoiceChoice(voicesRef);
  $("#pron-voice").value = entry.voice_id ?? "";
  $("#pron-save").textContent = "Save pronunciation";
  $("#pron-cancel").hidden = false;
  $("#pron-spoken").focus();
}

async function refreshPronunciations() {
  const { entries } = await getJSON("/pronunciations");
  const table = $("#pron-table");
  if (!entries.length) {
    table.tBodies[0].replaceChildren(el("tr", {}, el("td", { colspan: 4, class: "hint" },
      "No pronunciations yet.")));
    return;
  }
  table.tBodies[0].replaceChildren(...entries.map((entry) => el("tr",
    { dataset: { term: entry.term } },
    el("td", { "data-label": "Written" }, entry.term),
    el("td", { "data-label": "Said as" }, entry.spoken),
    el("td", { "data-label": "Where" }, where(entry)),
    el("td", { "data-label": "Actions" },
      el("button", { type: "button", class: "secondary small",
                     onclick: () => startEdit(entry) }, `Edit ${entry.term}`),
      " ",
      el("button", { type: "button", class: "secondary small",
                     onclick: () => remove(entry) }, `Delete ${entry.term}`)))));
}

async function save(event) {
  event.preventDefault();
  const term = $("#pron-term").value;
  const spoken = $("#pron-spoken").value;
  if (!term.trim() || !spoken.trim()) {
    say($("#pron-error"), "Fill in both what is written and how it is said.", "error");
    return;
  }
  const body = { term, spoken, case_sensitive: $("#pron-case").checked,
                 voice_id: $("#pron-voice").value || null };
  try {
    if (editing) {
      await sendJSON("PUT", `/pronunciations/${encodeURIComponent(editing)}`, body);
      say($("#pron-status"), `“${term}” is now said “${spoken}”.`, "ok");
    } else {
      await sendJSON("POST", "/pronunciations", body);
      say($("#pron-status"), `From now on “${term}” is said “${spoken}”.`, "ok");
    }
    say($("#pron-error"), "");
    resetForm();
    await refreshPronunciations();
  } catch (problem) {
    say($("#pron-status"), "");
    const taken = /already in the dictionary/.test(problem.message);
    say($("#pron-error"), taken
      ? `“${term}” already has a pronunciation: use its Edit button in the list.`
      : problem.message, "error");
  }
}

async function remove(entry) {
  try {
    await raw(`/pronunciations/${encodeURIComponent(entry.id)}`, { method: "DELETE" });
    say($("#pron-status"), `“${entry.term}” is read as written again.`, "ok");
    say($("#pron-error"), "");
    if (editing === entry.id) {
      resetForm();
    }
    await refreshPronunciations();
  } catch (problem) {
    say($("#pron-error"), problem.message, "error");
  }
}

export function initText(app, onTab) {
  $("#preview-text").addEventListener("click", preview);
  $("#pron-form").addEventListener("submit", save);
  $("#pron-cancel").addEventListener("click", resetForm);
  app.onVoices(fillVoiceChoice);
  onTab((name) => {
    if (name === "manage") {
      refreshPronunciations().catch((problem) => say($("#pron-error"), problem.message,
                                                     "error"));
    }
  });
}
