"""ttsframe: a plugin-based text-to-speech server."""

__version__ = "0.1.0"
