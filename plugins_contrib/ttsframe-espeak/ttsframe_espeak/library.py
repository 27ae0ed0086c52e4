"""ctypes binding to the libespeak-ng that the ``espeakng-loader`` wheel ships.

libespeak-ng keeps one synthesizer in process-global C state (voice, rate, the synth
callback), so this module keeps one :class:`EspeakLibrary` per process and serialises
every use of it with one lock: two backends, or a test beside a server, can never
interleave their settings or their audio.
"""

from __future__ import annotations

import ctypes
import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import espeakng_loader
import numpy as np

AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_DONT_EXIT = 0x8000
POS_CHARACTER = 1
CHARS_UTF8 = 1
EE_OK = 0

# espeak_PARAMETER
RATE, VOLUME, PITCH, RANGE, WORDGAP = 1, 2, 3, 4, 7

EVENT_LIST_TERMINATED, EVENT_WORD, EVENT_SENTENCE, EVENT_END = 0, 1, 2, 5


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]


class _Voice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                  ctypes.POINTER(_Event))


@dataclass(frozen=True)
class VoiceSettings:
    voice: str
    rate: int
    pitch: int
    pitch_range: int
    word_gap_ms: int
    volume: int = 100


# ``on_chunk(samples, text_position)``; returning True stops the synthesis.
ChunkSink = Callable[[np.ndarray, int], bool]


def data_dir() -> Path:
    return Path(espeakng_loader.get_data_path())


@functools.cache
def language_voices() -> dict[str, str]:
    """Language code -> eSpeak voice file, read from the shipped data (no library load).

    A code several voices claim goes to the one that claims it with the best priority.
    """
    best: dict[str, tuple[int, str]] = {}
    for path in sorted((data_dir() / "lang").rglob("*")):
        if not path.is_file():
            continue
        for line in path.read_text(encoding="latin-1").splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "language":
                code = parts[1].lower()
                priority = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else 5
                if code not in best or priority < best[code][0]:
                    best[code] = (priority, path.name)
    return {code: name for code, (_, name) in best.items()}


@functools.cache
def variants() -> frozenset[str]:
    """Voice variants (``m3``, ``f2``, ``croak``...) that may follow a ``+``."""
    return frozenset(p.name for p in (data_dir() / "voices" / "!v").iterdir() if p.is_file())


class EspeakLibrary:
    """The loaded library; use :func:`espeak_library` to get the process's instance."""

    def __init__(self) -> None:
        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib = self._lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p,
                                          ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint,
                                     ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
                                     ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        self.lock = threading.Lock()
        # espeak-ng looks for "espeak-ng-data" inside the directory it is given.
        root = str(data_dir().parent).encode()
        self.sample_rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 100, root,
                                                 INITIALIZE_DONT_EXIT)
        if self.sample_rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed ({self.sample_rate}) with data in "
                               f"{data_dir()}; reinstall espeakng-loader")
        self._sink: ChunkSink | None = None
        self._callback = _SynthCallback(self._on_synth)  # kept alive with the library
        lib.espeak_SetSynthCallback(self._callback)

    def _on_synth(self, wav, count, events) -> int:
        position = 0
        i = 0
        while events and events[i].type != EVENT_LIST_TERMINATED:
            if events[i].type in (EVENT_WORD, EVENT_SENTENCE, EVENT_END):
                position = max(position, events[i].text_position)
            i += 1
        samples = np.zeros(0, np.float32)
        if wav and count > 0:
            samples = np.ctypeslib.as_array(wav, shape=(count,)).astype(np.float32) / 32768.0
        sink = self._sink
        return 1 if sink is not None and sink(samples, position) else 0

    def voice_names(self) -> list[str]:
        """Voice file names (``en-us``, ``de``, ``cmn``) the library knows."""
        with self.lock:
            listed = self._lib.espeak_ListVoices(None)
            names, i = [], 0
            while listed[i]:
                names.append(listed[i].contents.identifier.decode().rsplit("/", 1)[-1].lower())
                i += 1
        return names

    def has_voice(self, voice: str) -> bool:
        """Whether eSpeak accepts ``voice`` (it ignores unknown variants; we do not)."""
        _, plus, variant = voice.partition("+")
        if plus and variant not in variants():
            return False
        with self.lock:
            return self._lib.espeak_SetVoiceByName(voice.encode()) == EE_OK

    def synthesize(self, text: str, settings: VoiceSettings, on_chunk: ChunkSink) -> None:
        """Speak ``text`` into ``on_chunk``; blocks until done or until it returns True."""
        data = text.encode("utf-8")
        with self.lock:
            lib = self._lib
            if lib.espeak_SetVoiceByName(settings.voice.encode()) != EE_OK:
                raise ValueError(f"eSpeak has no voice {settings.voice!r}")
            for param, value in ((RATE, settings.rate), (PITCH, settings.pitch),
                                 (RANGE, settings.pitch_range), (VOLUME, settings.volume),
                                 (WORDGAP, max(0, round(settings.word_gap_ms / 10)))):
                lib.espeak_SetParameter(param, value, 0)
            self._sink = on_chunk
            try:
                err = lib.espeak_Synth(data, len(data) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8,
                                       None, None)
            finally:
                self._sink = None
        if err != EE_OK:
            raise RuntimeError(f"espeak_Synth failed with error {err}")


_INSTANCE_LOCK = threading.Lock()
_instance: EspeakLibrary | None = None


def espeak_library() -> EspeakLibrary:
    """The process's one library instance (the C state is per process), made on first use."""
    global _instance
    with _INSTANCE_LOCK:
        if _instance is None:
            _instance = EspeakLibrary()
        return _instance
