"""The ``[plugins.dia]`` settings: which checkpoint, where it runs, and its limits."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from ttsframe.plugins.dia.loading import DEFAULT_MODEL


class DiaConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[plugins.dia]``: where the weights come from and how they run."""

    # Hugging Face repo id, or a local directory written by save_pretrained.
    model: str = DEFAULT_MODEL
    # Hub revision (branch, tag or commit) of ``model``; ignored for a local directory.
    revision: str | None = None
    # The DAC codec: hub id or directory. Default: the one the checkpoint names
    # (``descript/dac_44khz`` for the real model).
    codec: str | None = None
    # "auto": CUDA when present, else CPU.
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    # "auto": bfloat16 on CUDA when supported (else float32), float32 elsewhere.
    # The codec always runs in float32.
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    # torch.compile with a static cache, CUDA only. "auto": when a request sets
    # use_torch_compile = true; "on": for every request unless it sets it to false;
    # "off": never. Each new batch size and max_tokens bucket compiles again (slow once).
    compile: Literal["auto", "on", "off"] = "auto"
    # Never contact the hub: use the local directory or the Hugging Face cache only.
    local_files_only: bool = False
    # Hugging Face cache directory; default: HF_HUB_CACHE / HF_HOME as huggingface_hub does.
    cache_dir: str | None = None
    # The most requests the decoding loop runs at once (CFG doubles the internal batch).
    max_batch_size: Annotated[int, msgspec.Meta(ge=1, le=256)] = 8
    # Joining the decoding loop: at most this many decoder positions (start token and
    # audio prompt frames) are prefilled per step, so a burst of requests with long
    # prompts joins over several steps instead of stalling running streams; a waiting
    # request always joins when there is room and nothing else joins in that step.
    prefill_per_step: Annotated[int, msgspec.Meta(ge=1, le=65536)] = 2048
    # Give up on an unreachable hub after this many seconds instead of retrying.
    hub_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 10.0
    # torch's CPU threads for the whole process (torch.set_num_threads); None: torch's
    # default, one per core. Fewer threads help when other work shares the cores.
    cpu_threads: Annotated[int, msgspec.Meta(ge=1, le=1024)] | None = None
    # Streaming replies: decode and send audio every this many frames (86 frames = 1 s).
    # Smaller: earlier first audio, more codec work (each window adds 20 frames of context).
    stream_frames: Annotated[int, msgspec.Meta(ge=1, le=1024)] = 16
    # Encoded audio prompts kept in memory (least recently used dropped beyond this).
    prompt_cache_size: Annotated[int, msgspec.Meta(ge=0, le=4096)] = 32
