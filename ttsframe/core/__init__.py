"""The framework core: hook specs and the plugin kinds, plugin loading, config, the speech
path (service, scheduler, types), jobs, logs and startup assembly."""
