"""``ttsframe make-tiny-model``: the Dia plugin's command (``register_commands``)."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "write a tiny random Dia checkpoint (for tests and trials)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory")
    parser.add_argument("--layout", choices=["dir", "hub-cache"], default="dir",
                        help="'dir': a folder to set as [plugins.dia] model; 'hub-cache': a "
                             "Hugging Face cache holding the real repo ids")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from ttsframe.plugins.dia.tiny import write_tiny_checkpoint  # torch: only when run

    dest = Path(args.directory)
    write_tiny_checkpoint(dest, seed=args.seed, layout=args.layout)
    print(f"wrote a tiny random Dia checkpoint to {dest}")
    if args.layout == "dir":
        print(f"use it with:  TTSFRAME_PLUGINS__DIA__MODEL='\"{dest.resolve()}\"' ttsframe serve")
    else:
        print(f"use it with:  HF_HUB_CACHE={dest.resolve()} HF_HUB_OFFLINE=1 ttsframe serve")
    return 0
