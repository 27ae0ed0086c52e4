// Speech from ttsframe, streamed, with the official OpenAI SDK for Node.
//
//   npm install openai
//   node openai-node-stream.mjs ["[S1] Text to speak."] [speech.pcm]
//
// Environment: TTSFRAME_URL (default http://127.0.0.1:7860/v1), TTSFRAME_API_KEY (one of
// security.api_keys, when the server has keys), RESPONSE_FORMAT (default pcm: 16-bit mono
// at the rate in the X-Sample-Rate header), STREAM_FORMAT=sse for server-sent events.
// ttsframe streams /v1/audio/speech by default, as OpenAI does: the SDK's Response body
// yields audio while the rest is still being generated.
import fs from "node:fs";
import OpenAI from "openai";

const client = new OpenAI({
  baseURL: process.env.TTSFRAME_URL ?? "http://127.0.0.1:7860/v1",
  apiKey: process.env.TTSFRAME_API_KEY ?? "unused", // the SDK insists on some key
  maxRetries: 0,
});
const text = process.argv[2] ?? "[S1] Hello from the OpenAI SDK for Node.";
const outPath = process.argv[3] ?? "speech.pcm";
const sse = process.env.STREAM_FORMAT === "sse";

const started = performance.now();
const ms = () => Math.round(performance.now() - started);
const response = await client.audio.speech.create({
  model: "tts-1",
  voice: "nova",
  input: text,
  response_format: process.env.RESPONSE_FORMAT ?? "pcm",
  ...(sse ? { stream_format: "sse" } : {}),
});
console.log(`sample rate ${response.headers.get("x-sample-rate")}`);

const out = fs.createWriteStream(outPath);
let bytes = 0;
let pieces = 0;
function audio(chunk) {
  if (pieces === 0) console.log(`first audio after ${ms()} ms (${chunk.length} bytes)`);
  pieces += 1;
  bytes += chunk.length;
  out.write(chunk);
}

if (sse) {
  // Events are "data: {json}" blocks separated by a blank line.
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of response.body) {
    buffered += decoder.decode(chunk, { stream: true });
    let end;
    while ((end = buffered.indexOf("\n\n")) >= 0) {
      const block = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data: "))
        .map((l) => l.slice(6)).join("\n");
      if (!data) continue;
      const event = JSON.parse(data);
      if (event.type === "speech.audio.delta") audio(Buffer.from(event.audio, "base64"));
      else if (event.type === "speech.audio.done") console.log(`usage ${JSON.stringify(event.usage)}`);
    }
  }
} else {
  for await (const chunk of response.body) audio(Buffer.from(chunk));
}
out.end();
console.log(`${bytes} bytes in ${pieces} pieces, done after ${ms()} ms -> ${outPath}`);
