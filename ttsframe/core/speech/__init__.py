"""The speech path after HTTP: ``service`` prepares a request (preprocess, voice, options,
chunk plan) and makes its ``run``; the ``scheduler`` queues and batches tasks onto the
backends; the run's ``stream`` sends the parts through the ``output_pipeline``; ``quality``
checks each take; the ``catalogue`` knows the backends and their state."""
