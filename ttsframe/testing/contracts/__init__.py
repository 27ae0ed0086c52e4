"""Contract suites: subclass one in your tests and provide the fixture it names.

The built-in plugins run these same suites (``tests/test_contracts_builtin.py``).
"""

from ttsframe.testing.contracts.backend import BackendContract, make_task
from ttsframe.testing.contracts.encoder import EncoderContract
from ttsframe.testing.contracts.preprocessor import PreprocessorContract
from ttsframe.testing.contracts.quality_check import QualityCheckContract
from ttsframe.testing.contracts.voice_store import VoiceStoreContract

__all__ = ["BackendContract", "EncoderContract", "PreprocessorContract",
           "QualityCheckContract", "VoiceStoreContract", "make_task"]
