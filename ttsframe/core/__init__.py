"""The framework core: hook specs, registry, config, scheduler and domain types."""
