"""The public API for plugin HTTP routes (``register_routes``), kept stable across releases.

A handler declares ``server: NamedDependency[Server]`` and asks it for what a route
needs: ``await server.reply(request, speech)`` answers a ``SpeechRequest`` as the
built-in routes do (streamed when ``speech.stream`` is set, else whole, the same
headers, cancelled when the client hangs up first); ``server.speak`` (a whole
``SpeechOutput``) and ``server.open_stream`` (the stream) for handlers that shape their
own reply; ``server.voices``/``voice``, ``server.models``/``model``/``resolve_model``/
``model_names`` (``ModelEntry``: state, capabilities, languages) and ``server.settings``
(``ServerSettings``, read-only). ``audio_response`` (a finished ``SpeechOutput``),
``stream_response`` (an open stream) and ``await unless_disconnected(request, work)``
(cancels ``work`` when the client hangs up) are the parts of ``server.reply``.
A handler may also declare ``client: NamedDependency[Client]`` (from ``ttsframe``): who
is asking, whose jobs and logs a request's work belongs to; and ``plugin_config``: its
plugin's validated ``[plugins.<name>]`` section.
"""

from ttsframe.core.speech.catalogue import ModelEntry
from ttsframe.http.disconnect import unless_disconnected
from ttsframe.http.facade import Server, ServerSettings
from ttsframe.http.responses import audio_response, stream_response

__all__ = ["ModelEntry", "Server", "ServerSettings", "audio_response", "stream_response",
           "unless_disconnected"]
