"""Voices: the record and its audio prompt (``voice``), decoding uploaded audio
(``upload_decoder``), the built-in voices, prompt caches (``prompt_areas``) and the voice
store as the event loop reaches it (``async_store``)."""
