"""Speak text while it is being written, over ttsframe's live session protocol.

    pip install websockets
    TTSFRAME_URL=http://127.0.0.1:7860 python live_session.py --out reply.wav

The text is sent a few characters at a time, as a language model writes it; audio
(16-bit PCM at 24 kHz, binary frames) arrives while the rest is still being sent.
Set TTSFRAME_API_KEY when the server has API keys. See docs/live-speech.md.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
import wave

from websockets.sync.client import connect

REPLY = ("Thanks for asking! The museum opens at nine. Tickets are cheaper online, "
         "and the café on the top floor has the best view of the river.")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="reply.wav")
    parser.add_argument("--voice", default="alloy")
    parser.add_argument("--chars-per-second", type=float, default=120.0)
    args = parser.parse_args()
    url = os.environ.get("TTSFRAME_URL", "http://127.0.0.1:7860").replace("http", "ws", 1)
    key = os.environ.get("TTSFRAME_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with connect(f"{url}/live", additional_headers=headers) as ws:
        ws.send(json.dumps({"type": "start", "voice_id": args.voice,
                            "output_format": "pcm_24000", "params": {"temperature": 1.2}}))
        started = json.loads(ws.recv())
        print("session", started["session_id"], started["sample_rate"], "Hz")

        def write() -> None:  # a language model writing its reply
            for i in range(0, len(REPLY), 6):
                ws.send(json.dumps({"type": "text", "text": REPLY[i:i + 6]}))
                time.sleep(6 / args.chars_per_second)
            ws.send(json.dumps({"type": "end"}))

        writer = threading.Thread(target=write)
        writer.start()
        audio = bytearray()
        for message in ws:  # ends when the server closes the session (code 1000)
            if isinstance(message, bytes):
                audio += message
                continue
            event = json.loads(message)
            if event["type"] == "segment":
                print(f"segment {event['index']}: {event['start_s']:.2f}-"
                      f"{event['end_s']:.2f} s {event['text']!r}")
            elif event["type"] == "error":
                raise SystemExit(f"error {event['code']}: {event['message']}")
        writer.join()
    with wave.open(args.out, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(started["sample_rate"])
        out.writeframes(bytes(audio))
    print(f"wrote {len(audio) // 2 / started['sample_rate']:.2f} s to {args.out}")


if __name__ == "__main__":
    main()
