"""Live speech against one request sent when the reply is complete (docs/benchmark.md).

    python bench/live_speech.py            # the figures in docs/benchmark.md
    python bench/live_speech.py --quick    # a few seconds, to check that it runs

A simulated language model writes a 6-sentence, ~600-character reply, 4 characters per
token, at 20 and at 50 tokens/s, into (a) a live session (``/live``, each token as it is
written) and (b) one streamed ``/v1/audio/speech`` request sent when the reply is complete.
Measured: from the end of the first sentence (the token that completes it) to the first
audio, and from the last token to the last audio byte; for (b) the request starts at the
last token, so its figures are the writing time plus the request's own. Then 8 sessions
at once against the same 8 one after another.

The model is the tiny random Dia checkpoint on CPU with ``eos_scale=0`` (it never ends
speech on its own), so every generation runs exactly ``--max-tokens`` greedy decoding
steps: a segment and a chunk of (b) cost the same, whatever their text.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ttsframe.plugins.dia.tiny import write_tiny_checkpoint  # noqa: E402
from ttsframe.testing.server import ServerProcess  # noqa: E402

REPLY = ("[S1] Thanks for the question, it is a good one to ask before a trip to the city. "
         "The museum opens at nine in the morning and closes at six in the evening, except "
         "on Mondays and public holidays. Tickets are cheaper online, and children under "
         "twelve get in for free when they come with an adult. The café on the top floor "
         "has the best view of the river, the old stone bridge and the cathedral. If you "
         "go in the afternoon, start with the modern wing, which is much quieter then. "
         "Enjoy the visit, and tell me how it went when you are back home!")


def tokens(text: str, size: int = 4) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


def first_sentence_token(pieces: list[str]) -> int:
    """Index of the token that completes the first sentence."""
    written = ""
    for i, piece in enumerate(pieces):
        written += piece
        if any(mark in written[5:] for mark in ".!?"):
            return i
    return len(pieces) - 1


async def session(url: str, rate: float, params: dict) -> dict:
    """One live session fed at ``rate`` tokens/s; times relative to the first token."""
    pieces = tokens(REPLY)
    first_end = first_sentence_token(pieces)
    marks: dict[str, float] = {}
    async with connect(url.replace("http", "ws", 1) + "/live", max_size=None) as ws:
        await ws.send(json.dumps({"type": "start", "voice_id": "alloy",
                                  "output_format": "pcm_24000", "params": params}))
        json.loads(await ws.recv())
        t0 = time.perf_counter()

        async def write() -> None:
            for i, piece in enumerate(pieces):
                await ws.send(json.dumps({"type": "text", "text": piece}))
                if i == first_end:
                    marks["first_sentence_end"] = time.perf_counter() - t0
                await asyncio.sleep(1 / rate)
            marks["last_token"] = time.perf_counter() - t0
            await ws.send(json.dumps({"type": "end"}))

        writer = asyncio.create_task(write())
        audio = 0
        arrivals = []
        async for message in ws:
            if isinstance(message, bytes):
                audio += len(message)
                now = time.perf_counter() - t0
                arrivals.append((now, len(message) / 2 / 24000))
                marks.setdefault("first_audio", now)
                marks["last_audio"] = now
        await writer
    marks["audio_s"] = audio / 2 / 24000
    marks["spoken"] = played_until(arrivals)
    return marks


def played_until(arrivals: list[tuple[float, float]]) -> float:
    """When a player that starts at the first audio and waits whenever the next audio has
    not arrived yet finishes speaking: ``arrivals`` are (time, seconds of audio)."""
    cursor = 0.0
    for at, seconds in arrivals:
        cursor = max(cursor, at) + seconds
    return cursor


def whole_request(url: str, params: dict) -> dict:
    """(b): one streamed /v1/audio/speech of the complete reply; times from sending it."""
    body = {"model": "tts-1", "voice": "alloy", "input": REPLY, "response_format": "pcm",
            **params}
    t0 = time.perf_counter()
    first, audio, arrivals = None, 0, []
    with httpx.stream("POST", url + "/v1/audio/speech", json=body, timeout=600) as reply:
        reply.raise_for_status()
        rate = int(reply.headers.get("x-sample-rate", "44100"))
        for piece in reply.iter_bytes():
            now = time.perf_counter() - t0
            if piece and first is None:
                first = now
            audio += len(piece)
            arrivals.append((now, len(piece) / 2 / rate))
    return {"first_audio": first, "end": time.perf_counter() - t0,
            "audio_s": audio / 2 / rate, "spoken": played_until(arrivals)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-tokens", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rates = (20.0, 50.0)
    if args.quick:
        # The text arrives fast: the figures mean little, the run shows the script works.
        args.max_tokens, args.repeats, rates = 100, 1, (200.0,)
    work = Path(tempfile.mkdtemp(prefix="ttsframe-bench-"))
    model = write_tiny_checkpoint(work / "tiny-dia", eos_scale=0.0)
    config = work / "ttsframe.toml"
    config.write_text("[server]\nlog_level = \"warning\"\n"
                      "[generation]\nvoice_store = \"builtin\"\nworkers = 8\n"
                      f"[plugins.dia]\nmodel = \"{model}\"\ndevice = \"cpu\"\ncpu_threads = 1\n")
    params = {"greedy": True, "max_tokens": args.max_tokens}
    pieces = tokens(REPLY)
    first_end = first_sentence_token(pieces)
    with ServerProcess(config, ready_timeout=180) as srv:
        whole_request(srv.url, params)  # warm up
        print(f"Live speech: tiny Dia checkpoint, CPU, {args.max_tokens} greedy steps per "
              f"generation, {len(REPLY)}-character reply in {len(pieces)} tokens, "
              f"median of {args.repeats}")
        for rate in rates:
            writing = (len(pieces) - 1) / rate
            fse = first_end / rate
            live = [asyncio.run(session(srv.url, rate, params)) for _ in range(args.repeats)]
            whole = [whole_request(srv.url, params) for _ in range(args.repeats)]

            def med(rows, key):
                return statistics.median(r[key] for r in rows)
            a_first = med([{"x": r["first_audio"] - r["first_sentence_end"]} for r in live], "x")
            a_last = med([{"x": r["last_audio"] - r["last_token"]} for r in live], "x")
            b_first = writing - fse + med(whole, "first_audio")
            b_last = med(whole, "end")
            print(f"{rate:.0f} tokens/s (writing {writing:.1f} s):")
            print(f"  first sentence end -> first audio: session {a_first:.2f} s, "
                  f"whole request {b_first:.2f} s")
            print(f"  last token -> last audio byte:     session {a_last:.2f} s, "
                  f"whole request {b_last:.2f} s")
            a_spoken = med([{"x": r["spoken"] - r["last_token"]} for r in live], "x")
            b_spoken = med(whole, "spoken")
            print(f"  last token -> speaking ends:      session {a_spoken:.2f} s, "
                  f"whole request {b_spoken:.2f} s; from the first token "
                  f"{writing + a_spoken:.2f} s against {writing + b_spoken:.2f} s "
                  f"({(1 - (writing + a_spoken) / (writing + b_spoken)) * 100:.0f}% sooner)")
            print(f"  audio: session {med(live, 'audio_s'):.1f} s, whole request "
                  f"{med(whole, 'audio_s'):.1f} s; one whole request's first audio "
                  f"{med(whole, 'first_audio'):.2f} s")
        count = 2 if args.quick else 8

        async def together() -> list[dict]:
            return await asyncio.gather(*(session(srv.url, rates[-1], params)
                                          for _ in range(count)))
        t0 = time.perf_counter()
        at_once = asyncio.run(together())
        wall_once = time.perf_counter() - t0
        t0 = time.perf_counter()
        one_by_one = [asyncio.run(session(srv.url, rates[-1], params)) for _ in range(count)]
        wall_seq = time.perf_counter() - t0
        for name, rows, wall in (("at once", at_once, wall_once),
                                 ("one after another", one_by_one, wall_seq)):
            lag = statistics.mean(r["last_audio"] - r["last_token"] for r in rows)
            first = statistics.mean(r["first_audio"] - r["first_sentence_end"] for r in rows)
            print(f"{count} sessions {name}: {wall:.1f} s in all; per session, first "
                  f"sentence end -> first audio {first:.2f} s, last token -> last audio "
                  f"{lag:.2f} s")


if __name__ == "__main__":
    main()
