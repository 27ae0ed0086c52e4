// Speak: the text form, streamed playback and the list of takes.

import { getJSON, raw, sendJSON } from "./api.js";
import { $, el, formatSeconds, say } from "./dom.js";

const PARAM_LABELS = {
  temperature: "Temperature",
  cfg_scale: "CFG scale",
  top_p: "Top p",
  top_k: "Top k",
  speed: "Speed",
  seed: "Seed",
};
const MP3_STREAM = "audio/mpeg";
let takeCount = 0;
let running = null; // the AbortController of the generation in progress
let sounding = null; // { context, take }: a streamed WAV take playing through Web Audio
let maxChars = null; // the server's generation.max_text_chars

/** One take sounds at a time: every other player on the page pauses, and a WAV take
 *  still playing through Web Audio is suspended. `keep` is the player that starts. */
function pauseOthers(keep = null) {
  for (const player of document.querySelectorAll("audio")) {
    if (player !== keep && !player.paused) {
      player.pause();
    }
  }
  if (sounding && sounding.context.state === "running") {
    sounding.context.suspend();
    sounding.take.item.dataset.webAudio = "paused";
  }
}

/** Characters as the server counts them (code points of the trimmed text). */
function countChars(text) {
  return [...text.trim()].length;
}

function overLimit(text) {
  const count = countChars(text);
  if (maxChars === null || count <= maxChars) {
    return null;
  }
  return `The text is ${count} characters; this server takes at most ${maxChars}. `
    + `Shorten it by ${count - maxChars}, or split it into several takes.`;
}

/** The counter under the text; nothing is ever cut, a text over the limit is refused. */
function updateCount({ pasted = false } = {}) {
  const text = $("#text").value;
  const counter = $("#text-count");
  const problem = overLimit(text);
  counter.textContent = maxChars === null ? ""
    : `${countChars(text)} / ${maxChars} characters${problem ? ": too long" : ""}`;
  counter.dataset.kind = problem ? "error" : "";
  if (problem && pasted) {
    say($("#speak-error"), `Pasted in full, but it is too long. ${problem}`, "error");
  } else if (!problem && $("#speak-error").dataset.kind === "error"
             && $("#speak-error").dataset.cause === "length") {
    say($("#speak-error"), "");
  }
  $("#speak-error").dataset.cause = problem ? "length" : "";
}

function insertAtCursor(area, snippet) {
  const start = area.selectionStart ?? area.value.length;
  const end = area.selectionEnd ?? start;
  const before = area.value.slice(0, start);
  const pad = before && !/\s$/.test(before) ? " " : "";
  area.setRangeText(pad + snippet, start, end, "end");
  area.focus();
  updateCount();
}

function buildParams(meta) {
  const grid = $("#param-grid");
  grid.replaceChildren();
  for (const [name, spec] of Object.entries(meta.params)) {
    const id = `param-${name}`;
    const hintId = `${id}-hint`;
    const input = el("input", {
      type: "number", id, name, min: spec.min, max: spec.max, step: spec.step,
      inputmode: spec.integer ? "numeric" : "decimal", "aria-describedby": hintId,
      placeholder: spec.default === null ? "random" : undefined,
      value: spec.default === null ? undefined : spec.default,
      dataset: { default: spec.default ?? "" },
    });
    const range = `${spec.min} to ${spec.max}`;
    const hint = spec.default === null ? `${range}; empty: a new one each time`
                                       : `${range}; default ${spec.default}`;
    grid.append(el("div", { class: "field" },
      el("label", { for: id }, PARAM_LABELS[name] || name), input,
      el("p", { id: hintId, class: "hint" }, hint)));
  }
}

function fillSelect(select, items, selected) {
  select.replaceChildren(...items.map(([value, label]) =>
    el("option", { value, selected: value === selected }, label)));
}

export function fillVoices(select, voices, keep) {
  const current = keep ?? select.value;
  const builtin = voices.filter((v) => v.type === "builtin");
  const custom = voices.filter((v) => v.type !== "builtin");
  const group = (label, list) => el("optgroup", { label },
    list.map((v) => el("option", { value: v.voice_id, selected: v.voice_id === current },
      v.audio_prompt ? `${v.voice_id} (cloned)` : v.voice_id)));
  select.replaceChildren(group("Built-in voices", builtin),
    ...(custom.length ? [group("Custom voices", custom)] : []));
  if (![...select.options].some((o) => o.selected) && select.options.length) {
    select.options[0].selected = true;
  }
}

/** The request body from the form; ApiError-like messages for bad numbers. */
function readForm(meta) {
  const body = {
    text: $("#text").value,
    voice_id: $("#voice").value,
    response_format: $("#format").value,
  };
  if (!$("#backend-field").hidden) {
    body.model = $("#backend").value;
  }
  for (const [name, spec] of Object.entries(meta.params)) {
    const input = $(`#param-${name}`);
    if (input.value.trim() === "") {
      continue;
    }
    const value = Number(input.value);
    if (!Number.isFinite(value) || value < spec.min || value > spec.max
        || (spec.integer && !Number.isInteger(value))) {
      input.focus();
      throw new Error(`${PARAM_LABELS[name]} must be ${spec.integer ? "a whole number" : "a number"}`
                      + ` from ${spec.min} to ${spec.max}.`);
    }
    body[name] = value;
  }
  if (!$("#normalize").checked) {
    body.normalize = false;
  }
  if (body.seed === undefined) {
    // Choose the seed here so that the take can say which one it was.
    body.seed = crypto.getRandomValues(new Uint32Array(1))[0];
  }
  if (!body.text.trim()) {
    $("#text").focus();
    throw new Error("Type some text to speak.");
  }
  const tooLong = overLimit(body.text);
  if (tooLong) {
    $("#text").focus();
    throw new Error(tooLong);
  }
  return body;
}

function paramSummary(body) {
  const parts = [];
  for (const name of ["temperature", "cfg_scale", "top_p", "top_k", "speed"]) {
    if (body[name] !== undefined) {
      parts.push(`${PARAM_LABELS[name].toLowerCase()} ${body[name]}`);
    }
  }
  parts.push(body.response_format);
  if (body.model) {
    parts.push(body.model);
  }
  return parts.join(", ");
}

/** One entry of the takes list; returned parts are filled in as the audio arrives. */
function addTake(body) {
  takeCount += 1;
  const number = takeCount;
  const audio = el("audio", { controls: true, preload: "auto",
                              "aria-label": `Take ${number} audio` });
  const duration = el("span", { class: "take-duration" }, "generating…");
  const download = el("a", { class: "button secondary", hidden: true },
    `Download take ${number}`);
  const reuse = el("button", { type: "button", class: "secondary",
                               "aria-label": `Use this seed again (seed ${body.seed})` },
    "Use this seed again");
  reuse.addEventListener("click", () => {
    $("#param-seed").value = body.seed;
    $("#param-seed").focus();
    say($("#speak-status"), `Seed ${body.seed} set; Generate to hear it again.`);
  });
  const item = el("li", { class: "take", dataset: { seed: body.seed, state: "generating" } },
    el("div", { class: "take-head" },
      el("strong", {}, `Take ${number}`), " · ", el("span", {}, body.voice_id),
      " · seed ", el("span", { class: "take-seed" }, String(body.seed)), " · ", duration),
    el("p", { class: "take-text" }, body.text.length > 160 ? `${body.text.slice(0, 160)}…`
                                                           : body.text),
    el("p", { class: "hint" }, paramSummary(body)),
    audio,
    el("div", { class: "actions" }, download, reuse));
  $("#takes").prepend(item);
  $("#takes-empty").hidden = true;
  return { item, audio, duration, download, number };
}

function finishTake(take, blob, format, seconds) {
  const url = URL.createObjectURL(blob);
  take.download.href = url;
  take.download.download = `take-${take.number}-seed-${take.item.dataset.seed}.${format}`;
  take.download.hidden = false;
  take.duration.textContent = formatSeconds(seconds);
  take.item.dataset.state = "done";
}

/** Say under a take when a chunk was generated again or kept despite a failed check:
 *  X-Quality of a whole reply; for a stream, its generation-log row's notes. */
async function showQuality(take, response) {
  let notes = [];
  const header = response.headers.get("X-Quality");
  if (header !== null) {
    if (/retried=0; failed=0/.test(header) || header === "off") {
      return;
    }
    const warnings = response.headers.get("X-TTSFrame-Warnings") || "";
    notes = warnings.split(" | ").filter((w) => w.startsWith("quality:"));
  } else {
    // The row is written just after the stream ends.
    const id = response.headers.get("X-Request-ID");
    for (let tries = 0; tries < 5; tries += 1) {
      const { logs } = await getJSON("/logs?limit=20");
      const row = logs.find((entry) => entry.request_id === id);
      if (row) {
        notes = row.warnings.filter((w) => w.startsWith("quality:"));
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  }
  if (notes.length) {
    take.item.dataset.quality = notes.some((n) => n.includes("kept despite")) ? "failed"
      : "retried";
    take.item.append(el("p", { class: "take-quality" },
      notes.map((n) => n.replace(/^quality: /, "")).join(" ")));
  }
}

function waitFor(target, event) {
  return new Promise((resolve) => target.addEventListener(event, resolve, { once: true }));
}

async function append(buffer, bytes) {
  buffer.appendBuffer(bytes);
  await waitFor(buffer, "updateend");
}

/** Play MP3 while it arrives: chunks go into a MediaSource as they are read. */
async function playStreamed(response, take) {
  const source = new MediaSource();
  take.audio.src = URL.createObjectURL(source);
  await waitFor(source, "sourceopen");
  const buffer = source.addSourceBuffer(MP3_STREAM);
  const reader = response.body.getReader();
  const chunks = [];
  let started = false;
  take.audio.addEventListener("playing", () => {
    if (!take.item.dataset.firstPlayMs) {
      take.item.dataset.firstPlayMs = String(performance.now());
    }
  });
  for (;;) {
    const { done, value } = await reader.read();
    if (done) {
      break;
    }
    chunks.push(value);
    await append(buffer, value);
    const ahead = buffer.buffered.length ? buffer.buffered.end(0) : 0;
    if (!started && ahead > 0.25) {
      started = true;
      take.audio.play().catch(() => {});
      say($("#speak-status"), "Playing while the rest is generated…");
    }
  }
  take.item.dataset.replyDoneMs = String(performance.now());
  source.endOfStream();
  if (!started) {
    take.audio.play().catch(() => {});
  }
  return new Blob(chunks, { type: MP3_STREAM });
}

/** WAV's fixed 44-byte header with the sizes filled in (16-bit mono PCM). */
function wavHeader(rate, dataBytes) {
  const view = new DataView(new ArrayBuffer(44));
  const text = (at, value) => [...value].forEach((c, i) => view.setUint8(at + i, c.charCodeAt(0)));
  text(0, "RIFF");
  view.setUint32(4, 36 + dataBytes, true);
  text(8, "WAVEfmt ");
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true);
  view.setUint16(22, 1, true);
  view.setUint32(24, rate, true);
  view.setUint32(28, rate * 2, true);
  view.setUint16(32, 2, true);
  view.setUint16(34, 16, true);
  text(36, "data");
  view.setUint32(40, dataBytes, true);
  return view.buffer;
}

/** Play streamed WAV (44-byte header, then 16-bit mono PCM) through Web Audio as it
 *  arrives; the finished take is the same PCM with its sizes written in. */
async function playPcmStreamed(response, take, context) {
  const rate = Number(response.headers.get("X-Sample-Rate")) || 44100;
  const reader = response.body.getReader();
  const pcm = [];
  let skip = 44; // the streamed header's sizes are unknown; a new one is written at the end
  let carry = null; // an odd trailing byte waits for its partner
  let at = 0; // when the next piece starts on the context's clock
  let bytes = 0;
  sounding = { context, take };
  take.item.dataset.webAudio = "playing";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) {
      break;
    }
    let chunk = value;
    if (skip > 0) {
      const cut = Math.min(skip, chunk.length);
      skip -= cut;
      chunk = chunk.subarray(cut);
    }
    if (carry) {
      const joined = new Uint8Array(carry.length + chunk.length);
      joined.set(carry);
      joined.set(chunk, carry.length);
      chunk = joined;
      carry = null;
    }
    if (chunk.length % 2) {
      carry = chunk.slice(chunk.length - 1);
      chunk = chunk.subarray(0, chunk.length - 1);
    }
    if (!chunk.length) {
      continue;
    }
    const copy = chunk.slice();
    pcm.push(copy);
    bytes += copy.length;
    const samples = new Int16Array(copy.buffer);
    const buffer = context.createBuffer(1, samples.length, rate);
    const channel = buffer.getChannelData(0);
    for (let i = 0; i < samples.length; i += 1) {
      channel[i] = samples[i] / 32768;
    }
    const source = context.createBufferSource();
    source.buffer = buffer;
    source.connect(context.destination);
    at = Math.max(at, context.currentTime + 0.05);
    source.start(at);
    at += buffer.duration;
    if (!take.item.dataset.firstPlayMs) {
      take.item.dataset.firstPlayMs = String(performance.now());
      say($("#speak-status"), "Playing while the rest is generated…");
    }
  }
  take.item.dataset.replyDoneMs = String(performance.now());
  const blob = new Blob([wavHeader(rate, bytes), ...pcm], { type: "audio/wav" });
  take.audio.src = URL.createObjectURL(blob);
  // The take's player holds the whole file; what is still playing comes from Web Audio.
  const left = Math.max(0, at - context.currentTime);
  setTimeout(() => closeSound(context), left * 1000 + 500);
  return blob;
}

function closeSound(context) {
  if (sounding?.context === context) {
    sounding.take.item.dataset.webAudio = "ended";
    sounding = null;
  }
  if (context.state !== "closed") {
    context.close();
  }
}

async function playWhole(response, take) {
  const blob = await response.blob();
  take.item.dataset.replyDoneMs = String(performance.now());
  take.audio.src = URL.createObjectURL(blob);
  take.audio.addEventListener("playing", () => {
    take.item.dataset.firstPlayMs ||= String(performance.now());
  }, { once: true });
  take.audio.play().catch(() => {});
  return blob;
}

function streamKind(format) {
  if (format === "mp3" && "MediaSource" in window && MediaSource.isTypeSupported(MP3_STREAM)) {
    return "mse";
  }
  return format === "wav" && "AudioContext" in window ? "pcm" : null;
}

async function generate(app) {
  const status = $("#speak-status");
  const error = $("#speak-error");
  say(error, "");
  let body;
  try {
    body = readForm(app.meta);
  } catch (problem) {
    say(error, problem.message, "error");
    return;
  }
  const kind = streamKind(body.response_format);
  const streamed = kind !== null;
  pauseOthers();
  // Created during the click, so the browser lets it make sound.
  const context = kind === "pcm" ? new AudioContext() : null;
  running = new AbortController();
  $("#generate").disabled = true;
  $("#stop").disabled = false;
  say(status, "Generating…");
  const take = addTake(body);
  try {
    const response = await raw("/generate", {
      method: "POST", json: streamed ? { ...body, stream: true } : body,
      signal: running.signal });
    let blob;
    if (kind === "mse") {
      blob = await playStreamed(response, take);
    } else if (kind === "pcm") {
      blob = await playPcmStreamed(response, take, context);
    } else {
      blob = await playWhole(response, take);
    }
    const header = Number(response.headers.get("X-Audio-Duration"));
    if (!Number.isFinite(take.audio.duration) || take.audio.duration === 0) {
      await waitFor(take.audio, "durationchange");
    }
    const seconds = header > 0 ? header : take.audio.duration;
    finishTake(take, blob, body.response_format, seconds);
    showQuality(take, response).catch(() => {});
    const warnings = response.headers.get("X-TTSFrame-Warnings");
    say(status, `Take ${take.number} ready: ${formatSeconds(seconds)}.`
                + (warnings ? ` Note: ${warnings}` : ""), "ok");
  } catch (problem) {
    if (context) {
      closeSound(context);
    }
    take.item.remove();
    $("#takes-empty").hidden = $("#takes").children.length > 0;
    if (problem.name === "AbortError") {
      say(status, "Stopped.");
    } else {
      say(status, "");
      say(error, problem.message, "error");
    }
  } finally {
    running = null;
    $("#generate").disabled = false;
    $("#stop").disabled = true;
  }
}

async function queueJob(app) {
  const status = $("#speak-status");
  const error = $("#speak-error");
  say(error, "");
  try {
    const body = readForm(app.meta);
    const job = await sendJSON("POST", "/generate?async_mode=true", body);
    say(status, `Job ${job.job_id} queued; follow it under Manage → Jobs.`, "ok");
    document.dispatchEvent(new CustomEvent("ttsframe:job", { detail: job }));
  } catch (problem) {
    say(error, problem.message, "error");
  }
}

export function initSpeak(app) {
  const area = $("#text");
  // Capturing: "play" does not bubble. Any player starting pauses the others.
  document.addEventListener("play", (event) => pauseOthers(event.target), true);
  area.addEventListener("input", (event) => updateCount(
    { pasted: event.inputType === "insertFromPaste" || event.inputType === "insertFromDrop" }));
  for (const button of document.querySelectorAll("[data-insert]")) {
    button.addEventListener("click", () => insertAtCursor(area, button.dataset.insert));
  }
  $("#insert-nonverbal").addEventListener("click", () => {
    if ($("#nonverbal").value) {
      insertAtCursor(area, `(${$("#nonverbal").value}) `);
    }
  });
  $("#reset-params").addEventListener("click", () => {
    for (const input of $("#param-grid").querySelectorAll("input")) {
      input.value = input.dataset.default;
    }
  });
  $("#speak-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (!running) {
      generate(app);
    }
  });
  $("#stop").addEventListener("click", () => running?.abort());
  $("#queue-job").addEventListener("click", () => queueJob(app));
  app.onMeta((meta) => {
    buildParams(meta);
    fillSelect($("#nonverbal"), meta.nonverbals.map((t) => [t, `(${t})`]));
    const live = new Set(["mp3", "wav"]);
    const formats = meta.formats.map((f) => [f, live.has(f) ? `${f} (plays while generating)` : f]);
    fillSelect($("#format"), formats, meta.formats.includes("mp3") ? "mp3" : meta.default_format);
    fillSelect($("#backend"), meta.backends.map((b) => [b, b]), meta.default_backend);
    $("#backend-field").hidden = meta.backends.length < 2;
    maxChars = meta.max_text_chars;
    updateCount();
  });
  app.onVoices((voices) => fillVoices($("#voice"), voices));
}
