// Clone: a recording (file or microphone) + transcript become an audio prompt and a voice.

import { raw, sendJSON } from "./api.js";
import { $, el, say } from "./dom.js";

let recorded = null; // { blob, name } from the microphone
let recorder = null;

function showSample(blob) {
  const sample = $("#clone-sample");
  sample.src = URL.createObjectURL(blob);
  sample.hidden = false;
}

async function toggleRecording() {
  const button = $("#record");
  const state = $("#record-state");
  if (recorder) {
    recorder.stop();
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (problem) {
    say(state, `The microphone is not available: ${problem.message}`, "error");
    return;
  }
  const parts = [];
  recorder = new MediaRecorder(stream);
  recorder.addEventListener("dataavailable", (event) => parts.push(event.data));
  recorder.addEventListener("stop", () => {
    for (const track of stream.getTracks()) {
      track.stop();
    }
    const type = recorder.mimeType || "audio/webm";
    const ext = type.includes("ogg") ? "ogg" : type.includes("mp4") ? "m4a" : "webm";
    recorded = { blob: new Blob(parts, { type }), name: `recording.${ext}` };
    recorder = null;
    $("#clone-file").value = "";
    showSample(recorded.blob);
    button.textContent = "Record from microphone";
    say(state, "Recorded. Listen to it below, then type what you said.", "ok");
  });
  recorder.start();
  button.textContent = "Stop recording";
  const began = performance.now();
  const tick = () => {
    if (recorder) {
      const seconds = ((performance.now() - began) / 1000).toFixed(1);
      say(state, `Recording… ${seconds} s. Speak now, then stop.`);
      setTimeout(tick, 200);
    }
  };
  tick();
}

function transcriptFor(text, speaker) {
  const trimmed = text.trim();
  return /^\[S[12]\]/.test(trimmed) ? trimmed : `[${speaker}] ${trimmed}`;
}

/** The page's words for a name that is taken, with a button that replaces it. */
function offerReplace(app, name, isVoice) {
  const error = $("#clone-error");
  const taken = isVoice ? `A voice named “${name}” already exists.`
                        : `A recording named “${name}” is already stored.`;
  error.replaceChildren(`${taken} `,
    el("button", { type: "button", class: "secondary small",
                   onclick: () => createVoice(app, { replace: true }) }, "Replace it"),
    " or choose another name.");
  error.dataset.kind = "error";
}

/** Upload the recording and make the voice; `replace` overwrites a recording and a
 *  custom voice of the same name (the user chose "Replace it"). */
async function createVoice(app, { replace = false } = {}) {
  const status = $("#clone-status");
  const error = $("#clone-error");
  say(error, "");
  const file = $("#clone-file").files[0];
  const sample = file ? { blob: file, name: file.name } : recorded;
  const name = $("#clone-name").value.trim();
  const speaker = $("#clone-speaker").value;
  const transcript = $("#clone-transcript").value;
  const problems = [];
  if (!sample) {
    problems.push(["#clone-file", "Choose an audio file or record one."]);
  }
  if (!transcript.trim()) {
    problems.push(["#clone-transcript", "Type the transcript of the recording."]);
  }
  if (!name || !$("#clone-name").checkValidity()) {
    problems.push(["#clone-name", "Name the voice with letters, digits, _ . or -."]);
  }
  if (problems.length) {
    say(error, problems.map((p) => p[1]).join(" "), "error");
    $(problems[0][0]).focus();
    return;
  }
  const existing = app.voices.find((v) => v.voice_id === name);
  if (existing?.type === "builtin") {
    say(error, `“${name}” is a built-in voice. Choose another name.`, "error");
    $("#clone-name").focus();
    return;
  }
  if (existing && !replace) {
    offerReplace(app, name, true);
    return;
  }
  const button = $("#create-voice");
  button.disabled = true;
  let step = "upload";
  try {
    say(status, replace ? "Replacing the recording…" : "Uploading the recording…");
    const form = new FormData();
    form.append("prompt_id", name);
    form.append("audio_file", sample.blob, sample.name);
    await raw(`/audio_prompts/upload${replace ? "?overwrite=true" : ""}`,
              { method: "POST", body: form });
    step = "voice";
    say(status, "Creating the voice…");
    const voice = { primary_speaker: speaker, audio_prompt: name, style: "cloned",
                    audio_prompt_transcript: transcriptFor(transcript, speaker) };
    try {
      await sendJSON("POST", "/voice_mappings", { voice_id: name, ...voice });
    } catch (problem) {
      if (!(replace && problem.status === 409)) {
        throw problem;
      }
      await sendJSON("PUT", `/voice_mappings/${encodeURIComponent(name)}`, voice);
    }
    await app.reloadVoices();
    $("#voice").value = name;
    say(status, `Voice “${name}” created and selected under Speak. Generating a preview…`, "ok");
    await preview(name, speaker);
  } catch (problem) {
    say(status, "");
    if (problem.status === 409 && !replace) {
      offerReplace(app, name, step === "voice");
    } else if (problem.status === 403 && replace) {
      say(error, "Replacing a stored voice needs an admin key: enter one with “API key” at "
                 + "the top, or choose another name.", "error");
    } else {
      say(error, problem.message, "error");
    }
  } finally {
    button.disabled = false;
  }
}

async function preview(name, speaker) {
  const text = $("#clone-preview-text").value.trim() || "Hello! This is my new voice.";
  const response = await raw("/generate", {
    method: "POST", json: { text: transcriptFor(text, speaker), voice_id: name,
                            response_format: "wav" } });
  const player = $("#clone-preview");
  player.src = URL.createObjectURL(await response.blob());
  player.hidden = false;
  player.play().catch(() => {});
  say($("#clone-status"), `Voice “${name}” is ready; the preview is below.`, "ok");
}

export function initClone(app) {
  $("#clone-file").addEventListener("change", () => {
    const file = $("#clone-file").files[0];
    if (file) {
      recorded = null;
      showSample(file);
      if (!$("#clone-name").value) {
        $("#clone-name").value = file.name.replace(/\.[^.]*$/, "")
          .replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 64);
      }
    }
  });
  $("#record").addEventListener("click", toggleRecording);
  if (!navigator.mediaDevices?.getUserMedia || !("MediaRecorder" in window)) {
    $("#record").disabled = true;
    say($("#record-state"), "Recording needs a secure page (https or localhost).");
  }
  $("#clone-form").addEventListener("submit", (event) => {
    event.preventDefault();
    createVoice(app);
  });
}
