"""The hook transformers calls after every decoding step (a stopping criterion): it
reports progress, streams the audio that has become final, and ends generation once
every row of the batch is cancelled."""

from __future__ import annotations

import logging

import torch

from ttsframe import SynthesisTask
from ttsframe.plugins.dia.streaming import AudioStreamer

log = logging.getLogger("ttsframe.dia")

PROGRESS_EVERY = 16  # steps between on_progress calls


class AfterEachStep:
    """Stopping criterion for one ``generate`` call.

    transformers calls it after each decoding step with the (batch * channels, length)
    token ids; returning all-True ends generation there.
    """

    def __init__(self, tasks: list[SynthesisTask], prompt_len: int, max_new: int,
                 streamer: AudioStreamer | None = None) -> None:
        self.tasks, self.prompt_len, self.max_new = tasks, prompt_len, max_new
        self.streamer = streamer

    def __call__(self, input_ids, scores, **kwargs):
        step = int(input_ids.shape[1]) - self.prompt_len
        if step % PROGRESS_EVERY == 0 or step >= self.max_new:
            for task in self.tasks:
                if task.on_progress is not None:
                    try:
                        task.on_progress(step, self.max_new)
                    except Exception:
                        log.exception("on_progress callback failed")
        if self.streamer is not None:
            self.streamer.step(input_ids)
        stop = all(task.cancel.cancelled for task in self.tasks)
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool,
                          device=input_ids.device)
