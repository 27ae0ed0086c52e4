"""The model catalogue: the one owner of what the server says about its backends.

Every listing (``/models``, ``/v1/models``, ``/health``, ``/ui/meta``, plugin routes through
``ttsframe.routes.Server``) is a shape of the catalogue's entries, and every name a request
may send as ``model`` is resolved here, so a new field or a renamed state changes one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ttsframe.core.config.settings import Settings
from ttsframe.core.errors import InvalidInput, NotFound
from ttsframe.core.interfaces.backend import Backend, options_schema
from ttsframe.core.interfaces.synthesis import Capabilities

# OpenAI's model names: a request may send them and gets the default backend.
OPENAI_MODEL_ALIASES = frozenset({"tts-1", "tts-1-hd", "gpt-4o-mini-tts",
                                  "gpt-4o-mini-tts-2025-03-20", "gpt-4o-mini-tts-2025-12-15"})
# Who owns a model in the OpenAI listing when no plugin registered it (an OpenAI name).
OWNER = "ttsframe"


def model_names(backends: Mapping[str, Any]) -> list[str]:
    """Every name a request may send as ``model``: the backends, then OpenAI's names
    (which mean the default backend)."""
    return [*sorted(backends),
            *sorted(name for name in OPENAI_MODEL_ALIASES if name not in backends)]


def unknown_model(model: str, backends: Mapping[str, Any], default: str) -> str:
    """The one wording for a model that does not exist, wherever a model is named."""
    return (f"Model '{model}' not found; available models: {', '.join(model_names(backends))}"
            f" (the OpenAI names mean the default backend, '{default}')")


def resolve_model(model: str | None, backends: Mapping[str, Any], default: str) -> str:
    """The backend ``model`` names: its default for None, "" or an OpenAI name; an
    unknown name is a 400 (a request body's field) with the one message."""
    if model is None or model == "" or model in OPENAI_MODEL_ALIASES:
        return default
    if model in backends:
        return model
    raise InvalidInput(unknown_model(model, backends, default), param="model",
                       code="model_not_found")


@dataclass(frozen=True)
class ModelEntry:
    """One backend as the catalogue describes it; each listing picks its fields."""

    name: str
    # The backend ``generation.default_backend`` names (what ``model`` None means).
    default: bool
    # "loading", "ready" or "failed" (with ``error``): the backend's worker.
    state: str
    error: str | None
    capabilities: Capabilities
    # The plugin that registered the backend (``/v1/models``' ``owned_by``).
    owner: str
    # ``Backend.describe()`` once ready (model paths, device, ...); {} before.
    info: dict[str, Any] = field(default_factory=dict)
    # With ``cluster.engine = "ray"``: each replica's state, node, process, error.
    replicas: list[dict[str, Any]] | None = None
    # The JSON schema of the backend's request options (``Backend.options``; an object
    # with no properties for a backend without options). ``/models`` and ``/v1/models``
    # publish it.
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def languages(self) -> tuple[str, ...]:
        return self.capabilities.languages

    @property
    def ready(self) -> bool:
        return self.state == "ready"


class ModelCatalogue:
    """The backends, their workers' state and the names a request may use; built once in
    ``build_services`` and read live (a default changed by ``PUT /config`` shows at once)."""

    def __init__(self, settings: Settings, backends: Mapping[str, Backend],
                 workers: Mapping[str, Any], owners: Mapping[str, str]) -> None:
        self._settings = settings
        self._backends = backends
        self._workers = workers
        self._owners = owners
        # Option types are fixed when a backend is built: their schemas are made once,
        # not on every listing (``/health`` is polled).
        self._options = {name: options_schema(backend) for name, backend in backends.items()}

    @property
    def default(self) -> str:
        return self._settings.generation.default_backend

    def backends(self) -> list[str]:
        """The backends' names, sorted."""
        return sorted(self._backends)

    def names(self) -> list[str]:
        """Every name a request may send as ``model`` (backends, then OpenAI's names)."""
        return model_names(self._backends)

    def unknown(self, model: str) -> str:
        return unknown_model(model, self._backends, self.default)

    def resolve(self, model: str | None) -> str:
        """The backend a request's ``model`` means (400 for an unknown one)."""
        return resolve_model(model, self._backends, self.default)

    def lookup(self, model: str | None) -> str:
        """``resolve`` for a model named in a path or query: an unknown one is a 404
        (with no ``param``, which under ``/v1/`` would make it OpenAI's 400)."""
        if model is not None and model not in self.names():
            raise NotFound(self.unknown(model))
        return self.resolve(model)

    def owner(self, model: str) -> str:
        """Who a model name belongs to: the backend's plugin, or ttsframe for OpenAI's."""
        return self._owners.get(model, OWNER) if model in self._backends else OWNER

    def entry(self, model: str | None = None, *, detail: bool = True) -> ModelEntry:
        """One backend's entry (the default for None; 404 for an unknown name). Without
        ``detail`` the entry holds no error, info or replicas (for callers without a key)."""
        name = self.lookup(model)
        worker = self._workers[name]
        ready = worker.state == "ready"
        replica_health = getattr(worker, "replica_health", None)  # Ray pools only
        return ModelEntry(
            name=name, default=name == self.default, state=worker.state,
            error=worker.error if detail else None,
            capabilities=self._backends[name].capabilities, owner=self.owner(name),
            info=worker.backend.describe() if ready and detail else {},
            replicas=replica_health() if detail and replica_health is not None else None,
            options=self._options[name])

    def entries(self, *, detail: bool = True) -> list[ModelEntry]:
        """Every backend's entry, by name."""
        return [self.entry(name, detail=detail) for name in self.backends()]

    def status(self) -> str:
        """The server's health from its default backend: loading, healthy or unhealthy."""
        state = self._workers[self.default].state
        return {"ready": "healthy", "loading": "loading", "failed": "unhealthy"}[state]
