"""The public API for plugin HTTP routes (``register_routes``), kept stable across releases.

A handler declares ``services: NamedDependency[Services]`` to reach the server's
assembled services and answers speech with ``audio_response`` (a finished
``SpeechOutput``) or ``stream_response`` (an open stream from
``services.speech.open_stream``), which set the same headers as the built-in routes.
``await unless_disconnected(request, work)`` cancels ``work`` (a generation) when the client
hangs up. A handler may also declare ``client: NamedDependency[Client]`` (from
``ttsframe``): who is asking, whose jobs and logs a request's work belongs to.
"""

from ttsframe.core.assembly import Services
from ttsframe.http.disconnect import unless_disconnected
from ttsframe.http.responses import audio_response, stream_response

__all__ = ["Services", "audio_response", "stream_response", "unless_disconnected"]
