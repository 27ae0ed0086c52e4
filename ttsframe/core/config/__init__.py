"""Settings (defaults < ``ttsframe.toml`` < environment < flags), writing the config file
while the server runs, and the live editor behind ``GET``/``PUT /config``."""
