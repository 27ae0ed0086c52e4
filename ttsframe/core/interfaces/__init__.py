"""The plugin contract: the hook specs, one module per plugin kind (backend, text
preprocessor, voice store, encoder), the request and task types they exchange, and plugin
loading. What ``ttsframe`` exports for plugins comes from here."""
