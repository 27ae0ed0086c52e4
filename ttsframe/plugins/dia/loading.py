"""Finding the Dia checkpoint and its codec on disk (downloading only when allowed), then
loading them onto the chosen device.

Everything is resolved to local directories first and then loaded from those directories,
so transformers never goes to the network itself (by repo id it would retry the hub for
about 40 s before using the cache). A hub id is looked up in the local cache first; only
when it is missing, and neither ``local_files_only`` nor ``HF_HUB_OFFLINE`` forbids it, is it
downloaded, after a reachability check bounded by ``timeout_s``. torch and transformers
are imported only by the functions that load.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("ttsframe.dia")

DEFAULT_MODEL = "nari-labs/Dia-1.6B-0626"
DEFAULT_CODEC = "descript/dac_44khz"
# What loading needs; the model repository may also hold weights for other runtimes.
_PATTERNS = ["*.json", "*.safetensors", "*.jinja", "*.txt"]
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_TRUE = {"1", "ON", "YES", "TRUE"}


class ModelUnavailable(RuntimeError):
    """The model or its codec cannot be found or fetched; the message names the fix."""


@dataclass(frozen=True)
class ResolvedModel:
    """Local directories to load from, and the references they came from."""

    model_dir: Path
    codec_dir: Path
    model_ref: str
    codec_ref: str


def resolve_model(
    model: str,
    *,
    revision: str | None = None,
    codec: str | None = None,
    local_files_only: bool = False,
    cache_dir: str | None = None,
    timeout_s: float = 10.0,
) -> ResolvedModel:
    """Resolve ``model`` (hub id or directory) and its codec to local directories.

    The codec is ``codec`` when given, else the one the checkpoint's processor config names
    (a hub id, or a directory relative to the model directory), else ``descript/dac_44khz``.
    """
    fetch = _Fetcher(local_files_only=local_files_only, cache_dir=cache_dir,
                     timeout_s=timeout_s)
    model_dir = _local_dir(model)
    if model_dir is None:
        model_dir = fetch(model, revision, what="model")
    if not (model_dir / "config.json").is_file():
        raise ModelUnavailable(
            f"'{model_dir}' is not a Dia model directory (it has no config.json); set "
            "[plugins.dia] model to a directory written by save_pretrained or to a hub id "
            f"such as '{DEFAULT_MODEL}'")

    codec_ref = codec or _codec_named_by(model_dir) or DEFAULT_CODEC
    codec_dir = None
    if not codec and (model_dir / codec_ref).is_dir():  # relative to a self-contained model
        codec_dir = model_dir / codec_ref
    if codec_dir is None:
        codec_dir = _local_dir(codec_ref, what="codec")
    if codec_dir is None:
        codec_dir = fetch(codec_ref, None, what="codec", model=model)
    return ResolvedModel(model_dir, codec_dir, model, codec_ref)


def _local_dir(ref: str, what: str = "model") -> Path | None:
    """The directory ``ref`` names, or None when it is a hub id."""
    path = Path(ref).expanduser()
    if path.is_dir():
        return path.resolve()
    looks_like_path = ref.startswith(("/", ".", "~")) or "\\" in ref or ref.count("/") > 1
    if looks_like_path or not _REPO_ID.match(ref):
        raise ModelUnavailable(
            f"{what} directory '{ref}' does not exist; set [plugins.dia] "
            f"{'model' if what == 'model' else 'codec'} to an existing directory or a hub id "
            f"such as '{DEFAULT_MODEL if what == 'model' else DEFAULT_CODEC}'")
    return None


def _codec_named_by(model_dir: Path) -> str | None:
    """The codec reference saved with the processor (two file layouts exist)."""
    for name, key in (("audio_tokenizer_config.json", None),
                      ("processor_config.json", "audio_tokenizer")):
        path = model_dir / name
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        entry = data.get(key) if key else data
        if isinstance(entry, dict) and entry.get("audio_tokenizer_name_or_path"):
            return str(entry["audio_tokenizer_name_or_path"])
    return None


def hub_cache_dir() -> Path:
    """The hub cache as huggingface_hub computes it, but read from the environment now:
    huggingface_hub reads it once at import, which may precede the server's settings."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def hub_offline() -> bool:
    return any((os.environ.get(var) or "").upper() in _TRUE
               for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


@dataclass
class _Fetcher:
    local_files_only: bool
    cache_dir: str | None
    timeout_s: float

    def __call__(self, repo_id: str, revision: str | None, *, what: str,
                 model: str | None = None) -> Path:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        cache = Path(self.cache_dir).expanduser() if self.cache_dir else hub_cache_dir()
        try:
            return Path(snapshot_download(repo_id, revision=revision, cache_dir=cache,
                                          local_files_only=True))
        except LocalEntryNotFoundError:
            pass
        label = f"{what} '{repo_id}'" + (f" (revision {revision})" if revision else "")
        if what == "codec" and model:
            label += f", the audio codec of '{model}',"
        fix = _download_fix(repo_id, revision)
        if self.local_files_only or hub_offline():
            why = ("[plugins.dia] local_files_only is set" if self.local_files_only
                   else "HF_HUB_OFFLINE is set")
            raise ModelUnavailable(
                f"{label} is not in the Hugging Face cache ({cache}) and downloads are off "
                f"({why}): {fix}")
        log.warning("%s is not in the Hugging Face cache (%s); downloading it", label, cache)
        self._check_reachable(repo_id, revision, label, cache, fix)
        try:
            path = snapshot_download(repo_id, revision=revision, cache_dir=cache,
                                     allow_patterns=_PATTERNS, etag_timeout=self.timeout_s)
        except Exception as exc:
            raise ModelUnavailable(f"downloading {label} failed ({exc}); {fix}") from exc
        log.info("%s downloaded to %s", label, path)
        return Path(path)

    def _check_reachable(self, repo_id: str, revision: str | None, label: str, cache: Path,
                         fix: str) -> None:
        """One bounded request, so an unreachable hub fails in seconds, not after retries."""
        from huggingface_hub import HfApi
        from huggingface_hub.errors import (
            GatedRepoError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        try:
            HfApi().repo_info(repo_id, revision=revision, timeout=self.timeout_s)
        except GatedRepoError as exc:
            raise ModelUnavailable(
                f"{label} is gated on the Hugging Face hub: accept its terms on "
                f"https://huggingface.co/{repo_id} and set HF_TOKEN, or {fix}") from exc
        except RevisionNotFoundError as exc:
            raise ModelUnavailable(
                f"{label}: revision '{revision}' does not exist on the hub; fix "
                "[plugins.dia] revision") from exc
        except RepositoryNotFoundError as exc:
            raise ModelUnavailable(
                f"{label} does not exist on the Hugging Face hub (or is private: set "
                "HF_TOKEN); check [plugins.dia] model") from exc
        except Exception as exc:
            raise ModelUnavailable(
                f"{label} is not in the Hugging Face cache ({cache}) and the hub is "
                f"unreachable ({type(exc).__name__}: {exc}): {fix}") from exc


def _download_fix(repo_id: str, revision: str | None) -> str:
    repos = [repo_id] if repo_id != DEFAULT_MODEL else [DEFAULT_MODEL, DEFAULT_CODEC]
    rev = f" --revision {revision}" if revision else ""
    commands = " and ".join(f"`hf download {r}{rev if r == repo_id else ''}`" for r in repos)
    return (f"download it with {commands} (`huggingface-cli download` in older "
            "huggingface_hub) on a connected machine and copy the cache over (HF_HUB_CACHE), "
            "or set [plugins.dia] model to a local directory")


# -- onto a device ---------------------------------------------------------------------


def pick_device(wanted: str):
    import torch

    if wanted == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if wanted == "cuda" and not torch.cuda.is_available():
        raise ModelUnavailable(
            "[plugins.dia] device is 'cuda' but torch sees no CUDA device (torch "
            f"{torch.__version__}): install a CUDA build of torch or set device = \"cpu\"")
    if wanted == "mps" and not torch.backends.mps.is_available():
        raise ModelUnavailable("[plugins.dia] device is 'mps' but MPS is not available: "
                               "set device = \"cpu\"")
    return torch.device(wanted)


def pick_dtype(wanted: str, device):
    import torch

    if wanted != "auto":
        return getattr(torch, wanted)
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32  # float16 is unstable for Dia; CPU and MPS stay in float32


def load_components(model_dir: Path, codec_dir: Path, device, dtype):
    """Model and processor from local directories. The processor is built from its parts
    so that its codec comes from ``codec_dir``, wherever the checkpoint says it lives.
    The model is the subclass whose every token is chosen as the reference chooses it."""
    from transformers import DacModel, DiaFeatureExtractor, DiaProcessor, DiaTokenizer

    from ttsframe.plugins.dia.sampling import reference_sampling_model

    model = reference_sampling_model().from_pretrained(model_dir, local_files_only=True,
                                                       dtype=dtype)
    model.to(device).eval()
    codec = DacModel.from_pretrained(codec_dir, local_files_only=True).to(device).eval()
    processor = DiaProcessor(DiaFeatureExtractor.from_pretrained(model_dir),
                             DiaTokenizer.from_pretrained(model_dir), codec)
    return model, processor
