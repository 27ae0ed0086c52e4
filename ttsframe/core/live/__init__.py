"""Live speech: text that arrives in pieces (``segmenter``), spoken segment by segment by a
``session`` through the speech path, its audio sent as one stream (``audio``)."""
