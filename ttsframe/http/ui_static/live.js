// Speak view, live mode: the Text is sent into a live session (/live) a few characters at
// a time at a chosen rate, as a chat model writes, and its audio plays as it arrives.
// See docs/live-speech.md for the protocol.

import { getKey } from "./api.js";
import { $, el, say } from "./dom.js";

const RATE = 24000;
const PIECE = 4; // characters per message

function keyProtocols() {
  // A browser cannot set headers on a WebSocket: the key travels as a subprotocol.
  const key = getKey();
  if (!key) {
    return [];
  }
  const bytes = new TextEncoder().encode(key);
  const b64 = btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_")
    .replace(/=+$/, "");
  return [`ttsframe.key.${b64}`];
}

export function initLive() {
  const rate = el("input", { id: "live-rate", type: "number", min: "5", max: "5000",
                             step: "5", value: "40" });
  const start = el("button", { type: "button", id: "live-start", class: "secondary" },
                   "Speak live");
  const stop = el("button", { type: "button", id: "live-stop", class: "secondary",
                              disabled: true }, "Stop live");
  const status = el("p", { id: "live-status", class: "status", role: "status",
                           "aria-live": "polite" });
  const segments = el("ol", { id: "live-segments", class: "takes" });
  const card = el("section", { class: "card", id: "live-card",
                               "aria-labelledby": "live-heading" },
    el("h2", { id: "live-heading" }, "Live"),
    el("p", { class: "hint" }, "Sends the Text above a few characters at a time, as a chat ",
       "model writes, and plays each sentence as soon as it is spoken."),
    el("div", { class: "field" }, el("label", { for: "live-rate" }, "Characters per second"),
       rate),
    el("div", { class: "actions" }, start, stop),
    status, segments);
  const takes = $("#panel-speak > section.card");
  $("#panel-speak").insertBefore(card, takes);

  let session = null;

  function finish(state, message, kind = "") {
    if (!session) {
      return;
    }
    clearInterval(session.timer);
    session = null;
    card.dataset.state = state;
    say(status, message, kind);
    start.disabled = false;
    stop.disabled = true;
  }

  start.addEventListener("click", () => {
    const text = $("#text").value;
    if (!text.trim()) {
      say(status, "Type or paste the text to speak first.", "error");
      return;
    }
    segments.replaceChildren();
    const audio = new AudioContext({ sampleRate: RATE });
    const url = new URL("/live", location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(url, keyProtocols());
    ws.binaryType = "arraybuffer";
    const s = { ws, audio, next: 0, sent: 0, timer: null, seconds: 0, textDone: false };
    session = s;
    card.dataset.state = "live";
    delete card.dataset.firstAudioBeforeTextEnd;
    start.disabled = true;
    stop.disabled = false;
    say(status, "Connecting…");

    ws.addEventListener("open", () => {
      const body = { type: "start", voice_id: $("#voice").value, output_format: `pcm_${RATE}` };
      if (!$("#backend-field").hidden) {
        body.model = $("#backend").value;
      }
      ws.send(JSON.stringify(body));
      const perSecond = Math.max(1, Number(rate.value) || 40);
      s.timer = setInterval(() => {
        if (s.sent >= text.length) {
          clearInterval(s.timer);
          ws.send(JSON.stringify({ type: "end" }));
          s.textDone = true;
          return;
        }
        ws.send(JSON.stringify({ type: "text", text: text.slice(s.sent, s.sent + PIECE) }));
        s.sent += PIECE;
      }, (1000 * PIECE) / perSecond);
      say(status, "Writing and speaking…");
    });
    ws.addEventListener("message", (event) => {
      if (event.data instanceof ArrayBuffer) {
        play(s, event.data);
        if (card.dataset.firstAudioBeforeTextEnd === undefined) {
          card.dataset.firstAudioBeforeTextEnd = String(!s.textDone);
        }
        return;
      }
      const message = JSON.parse(event.data);
      if (message.type === "segment") {
        segments.append(el("li", { class: "take", dataset: { start: message.start_s } },
                           `${message.start_s.toFixed(2)} s: ${message.text}`));
      } else if (message.type === "done") {
        card.dataset.audioSeconds = String(message.duration_s);
        finish("done", `Spoke ${message.segments} segments, ${message.duration_s.toFixed(1)} s.`,
               "ok");
      } else if (message.type === "error") {
        finish("error", message.message, "error");
      }
    });
    ws.addEventListener("close", (event) => {
      if (session === s) {
        finish(event.code === 1000 ? "done" : "error",
               event.code === 1000 ? "Done." : `The session closed (${event.code}).`,
               event.code === 1000 ? "ok" : "error");
      }
    });
  });

  stop.addEventListener("click", () => {
    if (session) {
      const { ws, audio } = session;
      finish("stopped", "Stopped.");
      ws.close(1000);
      audio.close();
    }
  });
}

function play(s, data) {
  const pcm = new Int16Array(data);
  if (pcm.length === 0) {
    return;
  }
  const buffer = s.audio.createBuffer(1, pcm.length, RATE);
  const channel = buffer.getChannelData(0);
  for (let i = 0; i < pcm.length; i += 1) {
    channel[i] = pcm[i] / 32768;
  }
  const source = s.audio.createBufferSource();
  source.buffer = buffer;
  source.connect(s.audio.destination);
  s.next = Math.max(s.next, s.audio.currentTime + 0.05);
  source.start(s.next);
  s.next += buffer.duration;
  s.seconds += buffer.duration;
}
