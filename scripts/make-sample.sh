#!/usr/bin/env bash
# Remake docs/examples/sample.wav, the voice sample the README's tour clones, and its
# transcript docs/examples/sample.txt: eSpeak NG reading one sentence (apt-get install
# espeak-ng). A synthetic voice clones poorly; record 3-10 s of your own for real use.
set -euo pipefail
cd "$(dirname "$0")/.."
text="Hello there. This short sample is the voice that the tour clones."
espeak-ng -v en-us -s 165 -w docs/examples/sample.wav "$text"
printf '[S1] %s\n' "$text" > docs/examples/sample.txt
