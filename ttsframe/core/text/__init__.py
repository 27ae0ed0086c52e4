"""Text rules the core applies itself: speaker tags and markup (``tags``), the SSML input
format (``ssml``) and the pronunciation dictionary's store (``pronunciations``)."""
