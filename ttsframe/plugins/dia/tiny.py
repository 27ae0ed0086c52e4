"""A tiny random Dia checkpoint, so the real transformers code path runs without the hub.

The weights are random, so the audio is noise; what matters is that every shape, token id
and file the production loader reads is the real model's. ``ttsframe make-tiny-model DIR``
exposes :func:`write_tiny_checkpoint`.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Literal

MODEL_REPO = "nari-labs/Dia-1.6B-0626"
CODEC_REPO = "descript/dac_44khz"
CODEC_SUBDIR = "codec"
_DELAY_PATTERN = [0, 8, 9, 10, 11, 12, 13, 14, 15]
_AUDIO_EOS, _AUDIO_PAD, _AUDIO_BOS = 1024, 1025, 1026


def write_tiny_checkpoint(
    dest: Path | str,
    *,
    seed: int = 0,
    layout: Literal["dir", "hub-cache"] = "dir",
    eos_scale: float = 1.0,
) -> Path:
    """Write a tiny random Dia checkpoint (about 3.5 MB) and return what to configure.

    ``layout="dir"``: ``dest`` becomes a self-contained model directory (codec in
    ``dest/codec``) to use as ``[plugins.dia] model = "<dest>"``; it still loads after the
    folder is moved. Returns ``dest``.

    ``layout="hub-cache"``: ``dest`` becomes a Hugging Face hub cache holding
    ``nari-labs/Dia-1.6B-0626`` and ``descript/dac_44khz``, so the default configuration
    loads it unchanged with ``HF_HUB_CACHE=<dest> HF_HUB_OFFLINE=1``. Returns ``dest``.

    The same ``seed`` always gives the same weights. ``eos_scale > 1`` multiplies the
    channel-0 end-of-speech row of the output projection so that the model stops on its
    own after tens of steps (random weights almost never do), which exercises
    variable-length batches.
    """
    import torch
    from transformers.utils import logging as hf_logging

    dest = Path(dest)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the deprecation notes on the token ids below
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model, processor, codec = _build(eos_scale)
    finally:
        hf_logging.set_verbosity(verbosity)
    if layout == "dir":
        _save_dir(dest, model, processor, codec)
    elif layout == "hub-cache":
        _save_hub_cache(dest, model, processor, codec, seed)
    else:
        raise ValueError(f"unknown layout {layout!r}: use 'dir' or 'hub-cache'")
    return dest


def _build(eos_scale: float):
    """Configs with hidden size 32 and one layer whose ids and shapes match the real model."""
    import torch
    from transformers import (
        DacConfig,
        DacModel,
        DiaConfig,
        DiaFeatureExtractor,
        DiaForConditionalGeneration,
        DiaProcessor,
        DiaTokenizer,
        GenerationConfig,
    )

    encoder = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                   num_key_value_heads=2, head_dim=16, intermediate_size=64,
                   max_position_embeddings=1024, vocab_size=256)
    decoder = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                   num_key_value_heads=1, head_dim=16, intermediate_size=64,
                   cross_num_attention_heads=2, cross_head_dim=16, cross_num_key_value_heads=2,
                   cross_hidden_size=32, max_position_embeddings=3072, vocab_size=1028,
                   num_channels=len(_DELAY_PATTERN), eos_token_id=_AUDIO_EOS,
                   pad_token_id=_AUDIO_PAD, bos_token_id=_AUDIO_BOS)
    # Token ids on the top-level config too: older transformers read them from there.
    config = DiaConfig(encoder_config=encoder, decoder_config=decoder,
                       delay_pattern=list(_DELAY_PATTERN), eos_token_id=_AUDIO_EOS,
                       pad_token_id=_AUDIO_PAD, bos_token_id=_AUDIO_BOS)
    # Random weights speak noise, not the text: the backend declares no speaking rate
    # for such a checkpoint (the quality stage's rate check then needs [quality]
    # speech_rates to name it).
    config.random_weights = True
    model = DiaForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        do_sample=True, temperature=1.2, top_p=0.95, top_k=45, guidance_scale=3.0,
        max_length=3072, bos_token_id=_AUDIO_BOS, eos_token_id=_AUDIO_EOS,
        pad_token_id=_AUDIO_PAD, decoder_start_token_id=_AUDIO_BOS)
    if eos_scale != 1.0:
        with torch.no_grad():
            model.logits_dense.weight[_AUDIO_EOS].mul_(eos_scale)  # channel 0's EOS row

    # 4 * 2**4 = 64 latent channels; strides multiply to 512 samples per frame (the hop).
    codec = DacModel(DacConfig(encoder_hidden_size=4, decoder_hidden_size=32,
                               downsampling_ratios=[2, 4, 8, 8], n_codebooks=9,
                               codebook_size=1024, codebook_dim=8, sampling_rate=44100)).eval()
    _audible_decoder(codec)
    processor = DiaProcessor(DiaFeatureExtractor(sampling_rate=44100, hop_length=512),
                             DiaTokenizer(), codec)
    return model, processor, codec


def _audible_decoder(codec) -> None:
    """Re-initialise the codec's decoding path: its default init maps every code to nearly
    the same waveform, so tests could not tell different codes apart by their audio."""
    import torch
    from torch import nn

    with torch.no_grad():
        for quantizer in codec.quantizer.quantizers:
            nn.init.normal_(quantizer.codebook.weight, std=1.0)
            _fan_in(quantizer.out_proj)
        for module in codec.decoder.modules():
            if isinstance(module, nn.Conv1d | nn.ConvTranspose1d):
                _fan_in(module)
            elif hasattr(module, "alpha"):
                module.alpha.fill_(1.0)
        # Residual blocks grow the signal a lot: scale the last conv so that tanh is not
        # saturated (rms around 0.2 on random codes) and waveforms keep their detail.
        codes = torch.randint(0, 1024, (1, 9, 64))
        latents = codec.quantizer.from_codes(codes)[0]
        hidden = codec.decoder.conv1(latents)
        for block in codec.decoder.block:
            hidden = block(hidden)
        pre_tanh = codec.decoder.conv2(codec.decoder.snake1(hidden))
        codec.decoder.conv2.weight.mul_(0.2 / float(pre_tanh.pow(2).mean().sqrt()))


def _fan_in(conv) -> None:
    from torch import nn

    fan_in = conv.weight.shape[1] * conv.weight.shape[2]
    if isinstance(conv, nn.ConvTranspose1d):  # weight is (in, out, k): fan-in over in * k / stride
        fan_in = conv.weight.shape[0] * conv.weight.shape[2] / conv.stride[0]
    nn.init.normal_(conv.weight, std=1.0 / math.sqrt(fan_in))
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def _save_dir(dest: Path, model, processor, codec) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest)
    codec.save_pretrained(dest / CODEC_SUBDIR)
    processor.save_pretrained(dest)
    _name_codec(dest, CODEC_SUBDIR)  # relative to the model directory: survives a move


def _save_hub_cache(dest: Path, model, processor, codec, seed: int) -> None:
    model_dir = _snapshot_dir(dest, MODEL_REPO, seed)
    codec_dir = _snapshot_dir(dest, CODEC_REPO, seed)
    model.save_pretrained(model_dir)
    processor.save_pretrained(model_dir)
    _name_codec(model_dir, CODEC_REPO)  # as the real repository does
    codec.save_pretrained(codec_dir)
    processor.feature_extractor.save_pretrained(codec_dir)


def _snapshot_dir(cache: Path, repo_id: str, seed: int) -> Path:
    """Lay out ``models--org--name/{refs/main,snapshots/<commit>}`` as huggingface_hub does
    (plain files instead of blob links, which the hub's readers accept)."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    commit = hashlib.sha1(f"ttsframe-tiny:{repo_id}:{seed}".encode()).hexdigest()
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    return snapshot


def _name_codec(model_dir: Path, codec_ref: str) -> None:
    """Point the saved processor config at its codec (save_pretrained writes the codec's
    in-memory name, which is empty for a codec built here)."""
    path = model_dir / "processor_config.json"
    data = json.loads(path.read_text())
    data.setdefault("audio_tokenizer", {"audio_tokenizer_class": "DacModel"})
    data["audio_tokenizer"]["audio_tokenizer_name_or_path"] = codec_ref
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
