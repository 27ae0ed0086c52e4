"""ttsframe: a plugin-based text-to-speech server.

The names below are the public plugin API: what a plugin imports from ttsframe, kept
stable across releases (``docs/plugins.md``, "The public API"). Everything else under
``ttsframe.core``, ``ttsframe.http`` and ``ttsframe.plugins`` is internal and may change.
Plugin routes also use ``ttsframe.routes``, stores ``ttsframe.files``; plugin tests use
``ttsframe.testing``.
"""

__version__ = "0.1.0"

from ttsframe.core.atomic import atomic_write, atomic_write_bytes
from ttsframe.core.audio_math import float_to_pcm16, resample, to_mono
from ttsframe.core.clients import Client
from ttsframe.core.errors import (
    BackendUnavailable,
    CancelCause,
    Cancelled,
    ConfigError,
    Conflict,
    GenerationFailed,
    InvalidInput,
    NotFound,
    NotReady,
    PayloadTooLarge,
    PluginError,
    QueueFull,
    StorageFailed,
    TTSFrameError,
)
from ttsframe.core.ids import check_id, is_valid_id
from ttsframe.core.interfaces.backend import Backend, TaskFeed
from ttsframe.core.interfaces.encoder import BufferedStream, Encoder, StreamWriter
from ttsframe.core.interfaces.hookspecs import hookimpl
from ttsframe.core.interfaces.plugins import PluginContext
from ttsframe.core.interfaces.preprocessor import TextContext, TextPreprocessor
from ttsframe.core.interfaces.speech_types import GenerationParams, SpeechOutput, SpeechRequest
from ttsframe.core.interfaces.synthesis import (
    BackendOptions,
    CancelToken,
    Capabilities,
    SynthesisResult,
    SynthesisTask,
)
from ttsframe.core.interfaces.voice_store import VoiceStore
from ttsframe.core.speech.quality import CheckResult, Take
from ttsframe.core.text.pronunciations import PronunciationStore
from ttsframe.core.text.tags import (
    canonical_tags,
    outside_markup,
    speaker_of_leading_tag,
    without_speaker_tags,
)
from ttsframe.core.voices.builtin import BuiltinVoiceStore
from ttsframe.core.voices.prompt_areas import PromptAreas
from ttsframe.core.voices.upload_decoder import DecodedAudio, decode_audio
from ttsframe.core.voices.voice import AudioPrompt, Voice

__all__ = [
    "AudioPrompt",
    "Backend",
    "BackendOptions",
    "BackendUnavailable",
    "BufferedStream",
    "BuiltinVoiceStore",
    "CancelCause",
    "CancelToken",
    "Cancelled",
    "Capabilities",
    "CheckResult",
    "Client",
    "ConfigError",
    "Conflict",
    "DecodedAudio",
    "Encoder",
    "GenerationFailed",
    "GenerationParams",
    "InvalidInput",
    "NotFound",
    "NotReady",
    "PayloadTooLarge",
    "PluginContext",
    "PluginError",
    "PromptAreas",
    "PronunciationStore",
    "QueueFull",
    "SpeechOutput",
    "SpeechRequest",
    "StorageFailed",
    "StreamWriter",
    "SynthesisResult",
    "SynthesisTask",
    "TTSFrameError",
    "Take",
    "TaskFeed",
    "TextContext",
    "TextPreprocessor",
    "Voice",
    "VoiceStore",
    "__version__",
    "atomic_write",
    "atomic_write_bytes",
    "canonical_tags",
    "check_id",
    "decode_audio",
    "float_to_pcm16",
    "hookimpl",
    "is_valid_id",
    "outside_markup",
    "resample",
    "speaker_of_leading_tag",
    "to_mono",
    "without_speaker_tags",
]

