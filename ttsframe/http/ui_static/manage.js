// Manage: server status, jobs, voices, audio prompts, generation logs and configuration.

import { getBlob, getJSON, raw, sendJSON } from "./api.js";
import { $, el, formatSeconds, formatTime, saveBlob, say } from "./dom.js";

const FINISHED = new Set(["completed", "failed", "cancelled"]);
let timer = null;
let visible = false;
let appRef = null;

function report(problem) {
  say($("#manage-error"), problem.message, "error");
}

function cell(...children) {
  return el("td", {}, ...children);
}

function button(label, onclick, attrs = {}) {
  return el("button", { type: "button", class: "secondary small", onclick, ...attrs }, label);
}

/** Each cell names its column (`data-label`): on a phone the rows are drawn as cards
 *  and the label is shown beside the value (style.css). */
function labelCells(table) {
  const names = [...table.tHead.rows[0].cells].map((th) => th.textContent.trim());
  for (const row of table.tBodies[0].rows) {
    [...row.cells].forEach((td, i) => {
      if (!td.colSpan || td.colSpan === 1) {
        td.dataset.label = names[i] ?? "";
      }
    });
  }
}

/** A long id, cut with an ellipsis where room is short; whole in its tooltip. */
function ident(id) {
  return el("code", { class: "id", title: id }, id);
}

function emptyRow(table, columns, text) {
  table.tBodies[0].replaceChildren(el("tr", {}, el("td", { colspan: columns, class: "hint" },
    text)));
}

// ----------------------------------------------------------------------- status

async function refreshStatus() {
  const [health, models, queue] = await Promise.all([
    getJSON("/health"), getJSON("/models"), getJSON("/queue/stats")]);
  const view = $("#status-view");
  const stats = [
    ["Health", health.status], ["Version", health.version],
    ["Queued requests", `${queue.queued_requests} of ${queue.queue_size}`],
    ["Generating now", `${queue.active_workers} of ${queue.total_workers}`],
    ["Jobs pending", queue.pending_jobs], ["Jobs processing", queue.processing_jobs],
    ["Jobs completed", queue.completed_jobs], ["Jobs failed", queue.failed_jobs],
  ];
  const modelItems = models.models.map((m) => el("li", { dataset: { state: m.state } },
    el("strong", {}, m.id), m.default ? " (default)" : "", `: ${m.state}`,
    health.backends[m.id]?.error ? ` (${health.backends[m.id].error})` : "",
    m.info?.device ? ` on ${m.info.device}` : ""));
  view.replaceChildren(
    el("dl", { class: "stats", id: "status-stats" },
      stats.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))])),
    el("h4", {}, "Models"), el("ul", { class: "models" }, modelItems));
  view.dataset.health = health.status;
}

// ------------------------------------------------------------------------- jobs

async function refreshJobs() {
  const table = $("#jobs-table");
  const { jobs } = await getJSON("/jobs?limit=50");
  if (!jobs.length) {
    emptyRow(table, 6, "No jobs.");
    return jobs;
  }
  table.tBodies[0].replaceChildren(...jobs.map((job) => {
    const actions = [];
    if (!FINISHED.has(job.status)) {
      actions.push(button("Cancel", () => cancelJob(job.job_id),
        { "aria-label": `Cancel job ${job.job_id}` }));
    }
    if (job.status === "completed") {
      actions.push(button("Download", () => downloadJob(job),
        { "aria-label": `Download job ${job.job_id}` }));
    }
    const progress = job.progress === null ? "–" : `${Math.round(job.progress * 100)} %`;
    return el("tr", { dataset: { jobId: job.job_id, status: job.status } },
      cell(ident(job.job_id)),
      cell(job.status, job.error_message ? `: ${job.error_message}` : ""),
      cell(progress), cell(job.voice_id), cell(formatTime(job.created_at)),
      cell(...actions));
  }));
  labelCells(table);
  return jobs;
}

async function cancelJob(id) {
  try {
    const reply = await raw(`/jobs/${encodeURIComponent(id)}`, { method: "DELETE" });
    say($("#manage-error"), "");
    say($("#config-status"), "");
    await reply.json();
  } catch (problem) {
    report(problem);
  }
  await refreshJobs().catch(report);
}

async function downloadJob(job) {
  try {
    const blob = await getBlob(`/jobs/${encodeURIComponent(job.job_id)}/result`);
    saveBlob(blob, `${job.job_id}.${job.response_format}`);
  } catch (problem) {
    report(problem);
  }
}

// ----------------------------------------------------------------------- voices

async function refreshVoices() {
  const table = $("#voices-table");
  const voices = Object.values(await getJSON("/voice_mappings"));
  table.tBodies[0].replaceChildren(...voices.map((v) => el("tr",
    { dataset: { voiceId: v.voice_id } },
    cell(el("strong", {}, v.voice_id), v.style ? ` (${v.style})` : ""),
    cell(v.builtin ? "built-in" : "custom"), cell(v.primary_speaker),
    cell(v.audio_prompt || "–"),
    cell(...(v.builtin ? [el("span", { class: "hint" }, "read-only")] : [
      button("Edit", () => editVoice(v), { "aria-label": `Edit voice ${v.voice_id}` }),
      button("Delete", () => deleteVoice(v.voice_id),
        { "aria-label": `Delete voice ${v.voice_id}` })])))));
  labelCells(table);
}

function editVoice(voice) {
  const dialog = $("#edit-dialog");
  $("#edit-title").textContent = `Edit voice ${voice.voice_id}`;
  $("#edit-style").value = voice.style || "";
  $("#edit-speaker").value = voice.primary_speaker;
  $("#edit-transcript").value = voice.audio_prompt_transcript || "";
  $("#edit-transcript").disabled = !voice.audio_prompt;
  say($("#edit-error"), "");
  dialog.dataset.voiceId = voice.voice_id;
  dialog.showModal();
}

async function saveVoice(event) {
  event.preventDefault();
  const dialog = $("#edit-dialog");
  const body = { style: $("#edit-style").value, primary_speaker: $("#edit-speaker").value };
  if (!$("#edit-transcript").disabled) {
    body.audio_prompt_transcript = $("#edit-transcript").value;
  }
  try {
    await sendJSON("PUT", `/voice_mappings/${encodeURIComponent(dialog.dataset.voiceId)}`, body);
    dialog.close();
    await Promise.all([refreshVoices(), appRef.reloadVoices()]);
  } catch (problem) {
    say($("#edit-error"), problem.message, "error");
  }
}

async function deleteVoice(id) {
  if (!window.confirm(`Delete voice “${id}”? Its audio prompt goes too unless another voice uses it.`)) {
    return;
  }
  try {
    await raw(`/voice_mappings/${encodeURIComponent(id)}`, { method: "DELETE" });
    say($("#manage-error"), "");
    await Promise.all([refreshVoices(), refreshPrompts(), appRef.reloadVoices()]);
  } catch (problem) {
    report(problem);
  }
}

// ---------------------------------------------------------------------- prompts

async function refreshPrompts() {
  const table = $("#prompts-table");
  const prompts = Object.values(await getJSON("/audio_prompts"));
  if (!prompts.length) {
    emptyRow(table, 4, "No audio prompts yet: clone a voice to add one.");
    return;
  }
  table.tBodies[0].replaceChildren(...prompts.map((p) => {
    const inUse = p.used_by.length > 0;
    const noteId = `prompt-note-${p.prompt_id}`;
    const actions = [button("Delete", () => deletePrompt(p.prompt_id, false, p.used_by), {
      "aria-label": `Delete audio prompt ${p.prompt_id}`,
      "aria-describedby": inUse ? noteId : undefined })];
    if (inUse) {
      actions.push(el("p", { id: noteId, class: "hint" },
        `In use by ${p.used_by.join(", ")}: delete or change ${p.used_by.length > 1 ? "those voices" : "that voice"} first, or delete them together.`));
    }
    return el("tr", { dataset: { promptId: p.prompt_id } },
      cell(el("strong", {}, p.prompt_id)), cell(formatSeconds(p.duration)),
      cell(inUse ? p.used_by.join(", ") : "–"), cell(...actions));
  }));
  labelCells(table);
}

async function deletePrompt(id, cascade, users = []) {
  try {
    await raw(`/audio_prompts/${encodeURIComponent(id)}${cascade ? "?cascade=true" : ""}`,
      { method: "DELETE" });
    say($("#manage-error"), "");
    await Promise.all([refreshPrompts(), refreshVoices(), appRef.reloadVoices()]);
  } catch (problem) {
    if (problem.status === 409 && !cascade) {
      // In use: say by which voices, and offer to delete them with it.
      const region = $("#manage-error");
      const which = users.length === 1 ? `the voice ${users[0]}`
        : users.length ? `the voices ${users.join(", ")}` : "voices";
      region.replaceChildren(`The recording “${id}” is used by ${which}. `,
        button("Delete the voices that use it too", () => deletePrompt(id, true, users)),
        " or change those voices first.");
      region.dataset.kind = "error";
      return;
    }
    report(problem);
  }
}

// ------------------------------------------------------------------------- logs

async function refreshLogs() {
  const table = $("#logs-table");
  const { logs } = await getJSON("/logs?limit=50");
  const meta = appRef.meta;
  $("#logs-hint").textContent = meta && !meta.save_outputs
    ? "Audio is kept only with save_outputs on, and text only with show_prompts on "
      + "(see Configuration)." : "";
  if (!logs.length) {
    emptyRow(table, 6, "No generations yet.");
    return;
  }
  table.tBodies[0].replaceChildren(...logs.map((log) => el("tr",
    { dataset: { logId: log.log_id } },
    cell(formatTime(log.created_at)), cell(log.status, log.error ? `: ${log.error}` : ""),
    cell(log.voice_id), cell(log.text ?? `${log.text_chars} characters`),
    cell(formatSeconds(log.duration_s)),
    cell(log.download_url ? button("Download", async () => {
      try {
        saveBlob(await getBlob(log.download_url), `${log.log_id}.${log.response_format}`);
      } catch (problem) {
        report(problem);
      }
    }, { "aria-label": `Download log ${log.log_id}` }) : "–"))));
  labelCells(table);
}

// ----------------------------------------------------------------------- config

let configValues = {};

function configInput(name, value, editable) {
  const id = `config-${name}`;
  let input;
  if (typeof value === "boolean") {
    input = el("input", { type: "checkbox", id, name, checked: value });
  } else if (typeof value === "number") {
    input = el("input", { type: "number", id, name, value, step: "any" });
  } else {
    input = el("input", { type: "text", id, name, value });
  }
  input.disabled = !editable;
  const label = el("label", { for: id }, name.replaceAll("_", " "));
  return el("div", { class: typeof value === "boolean" ? "field check" : "field" },
    ...(typeof value === "boolean" ? [input, label] : [label, input]));
}

async function refreshConfig() {
  const view = await getJSON("/config");
  const admin = Boolean(appRef.meta?.admin);
  configValues = {};
  const fields = [];
  for (const [name, value] of Object.entries(view)) {
    if (name === "config_file" || name === "restart_required") {
      continue;
    }
    configValues[name] = value;
    fields.push(configInput(name, value, admin));
  }
  $("#config-fields").replaceChildren(...fields);
  $("#save-config").disabled = !admin;
  $("#config-hint").textContent = (admin ? "Changes apply at once and are written to "
    : "Only an admin key can change these; they are written to ") + view.config_file + ".";
  $("#config-restart").replaceChildren(...Object.entries(view.restart_required).flatMap(
    ([k, v]) => [el("dt", {}, k), el("dd", {}, JSON.stringify(v))]));
}

async function saveConfig(event) {
  event.preventDefault();
  const changes = {};
  for (const [name, before] of Object.entries(configValues)) {
    const input = $(`#config-${name}`);
    let value = input.value;
    if (typeof before === "boolean") {
      value = input.checked;
    } else if (typeof before === "number") {
      value = Number(input.value);
    }
    if (value !== before) {
      changes[name] = value;
    }
  }
  say($("#config-error"), "");
  if (!Object.keys(changes).length) {
    say($("#config-status"), "Nothing changed.");
    return;
  }
  try {
    await sendJSON("PUT", "/config", changes);
    say($("#config-status"), `Saved: ${Object.keys(changes).join(", ")}.`, "ok");
    await refreshConfig();
  } catch (problem) {
    say($("#config-status"), "");
    say($("#config-error"), problem.message, "error");
  }
}

// ---------------------------------------------------------------------- refresh

async function refreshAll() {
  await Promise.all([refreshStatus(), refreshJobs(), refreshVoices(), refreshPrompts(),
                     refreshLogs(), refreshConfig()]).catch(report);
}

/** While Manage is shown: status and jobs every second, the rest on demand. */
function schedule() {
  clearTimeout(timer);
  if (!visible || document.hidden) {
    return;
  }
  timer = setTimeout(async () => {
    await Promise.all([refreshStatus(), refreshJobs()]).catch(report);
    schedule();
  }, 1000);
}

export function initManage(app, onTab) {
  appRef = app;
  onTab((name) => {
    visible = name === "manage";
    if (visible) {
      refreshAll().then(schedule);
    } else {
      clearTimeout(timer);
    }
  });
  document.addEventListener("visibilitychange", schedule);
  // Another key may change what this tab may do (Configuration needs an admin key).
  app.onMeta(() => {
    if (visible) {
      refreshAll();
    }
  });
  app.onVoices(() => {
    if (visible) {
      Promise.all([refreshVoices(), refreshPrompts()]).catch(report);
    }
  });
  $("#refresh-logs").addEventListener("click", () => refreshLogs().catch(report));
  $("#clear-jobs").addEventListener("click", async () => {
    try {
      await raw("/jobs", { method: "DELETE" });
      await refreshJobs();
    } catch (problem) {
      report(problem);
    }
  });
  $("#edit-form").addEventListener("submit", saveVoice);
  $("#edit-cancel").addEventListener("click", () => $("#edit-dialog").close());
  $("#config-form").addEventListener("submit", saveConfig);
}
