"""Built-in plugins, each registered through the ttsframe entry-point group."""
