"""The public API for plugin HTTP routes (``register_routes``), kept stable across releases.

A handler declares ``services: NamedDependency[Services]`` to reach the server's
assembled services and answers a ``SpeechRequest`` with ``await speech_reply(request,
services, speech)``, as the built-in routes do: streamed when ``speech.stream`` is set,
else whole, with the same headers, and cancelled when the client hangs up first.
``audio_response`` (a finished ``SpeechOutput``), ``stream_response`` (an open stream from
``services.speech.open_stream``) and ``await unless_disconnected(request, work)`` (cancels
``work`` when the client hangs up) are its parts, for handlers that need them apart.
A handler may also declare ``client: NamedDependency[Client]`` (from ``ttsframe``): who
is asking, whose jobs and logs a request's work belongs to.
"""

from ttsframe.core.assembly import Services
from ttsframe.http.disconnect import unless_disconnected
from ttsframe.http.responses import audio_response, speech_reply, stream_response

__all__ = ["Services", "audio_response", "speech_reply", "stream_response",
           "unless_disconnected"]
