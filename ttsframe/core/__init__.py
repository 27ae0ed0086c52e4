"""The framework core: everything between the HTTP layer and the plugins, knowing no
model and no HTTP. One folder per concern (``docs/architecture.md`` has the map); the
shared basics (errors, ids, atomic writes, audio maths, clients) sit at the top. Startup
assembly is outside the core, in ``ttsframe/assembly.py``."""
