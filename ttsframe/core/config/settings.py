"""Settings: defaults < ``ttsframe.toml`` < ``TTSFRAME_*`` environment < command-line flags.

Every key is declared here once, with its type and default; ``ttsframe.toml`` at the
repository root documents them for users. Relative paths are resolved against the
directory of the config file (or the working directory when there is none).
"""

from __future__ import annotations

import os
import tomllib
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from ttsframe.core.errors import ConfigError

ENV_PREFIX = "TTSFRAME_"
DEFAULT_CONFIG_NAME = "ttsframe.toml"


# A host name as clients write it: a name or IPv6 literal, an optional port, or "*".
HostPattern = Annotated[str, msgspec.Meta(pattern=(
    r"^(\*|(\*\.)?[A-Za-z0-9_-][A-Za-z0-9_.-]*(:[0-9]{1,5})?"
    r"|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?)$"))]


class ServerConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 7860
    debug_mode: bool = False
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # After SIGTERM / Ctrl-C: how long requests already generating may take to finish.
    shutdown_grace_s: Annotated[float, msgspec.Meta(ge=1, le=3600)] = 10.0
    # The process umask ``serve`` sets before it creates anything: the database, job
    # results, saved outputs, prompts and voice files hold other clients' data, so by
    # default only the server's user may read them (files 0600, directories 0700).
    umask: Annotated[int, msgspec.Meta(ge=0, le=0o777)] = 0o077
    # "text": one readable line per record; "json": one JSON object per line (log shippers).
    log_format: Literal["text", "json"] = "text"
    # Slow and idle clients (http/connection_limits.py): the headers must arrive within
    # header_timeout_s of connecting (or of the last reply), a body within body_timeout_s
    # of its headers; at most max_connections open and max_requests handled at once.
    header_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 10.0
    body_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=86400)] = 120.0
    max_connections: Annotated[int, msgspec.Meta(ge=8, le=1_000_000)] = 1000
    max_requests: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 256
    # Host names clients may reach the server by (the Host header), besides IP addresses,
    # localhost and this machine's own name (http/hosts.py): any other name gets 421, so a
    # web page cannot reach the server through a DNS name it controls (DNS rebinding).
    # "tts.lan" (any port), "tts.lan:8443" (that port only), "*.example.com" (subdomains);
    # ["*"] accepts every name.
    allowed_hosts: list[HostPattern] = []


# An API key: non-empty, no whitespace (a client's "Bearer <key>" could never carry it).
ApiKey = Annotated[str, msgspec.Meta(pattern=r"^\S+$")]


class SecurityConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    api_keys: list[ApiKey] = []
    admin_keys: list[ApiKey] = []
    # Keys that may read the metrics endpoint (besides admin keys), for a Prometheus server.
    metrics_keys: list[ApiKey] = []
    # SillyTavern's default address; never combined with credentials for "*".
    cors_origins: list[str] = msgspec.field(
        default_factory=lambda: ["http://localhost:8000", "http://127.0.0.1:8000"]
    )


class StorageConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    data_dir: str = "data"
    audio_prompts_dir: str = "audio_prompts"
    audio_outputs_dir: str = "audio_outputs"
    max_upload_mb: Annotated[float, msgspec.Meta(gt=0, le=1024)] = 25.0
    # Quotas of the filesystem voice store: prompts' total size, and custom voices.
    max_prompts_mb: Annotated[float, msgspec.Meta(gt=0, le=10_000_000)] = 2048.0
    max_voices: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 10_000


class GenerationConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    default_backend: str = "dia"
    default_format: str = "wav"
    voice_store: str = "filesystem"
    max_text_chars: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 4096
    # The work one request may cause: generations after long text is split (characters
    # alone do not bound it: 4096 emoji are 16 KB of UTF-8).
    max_generations: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 64
    workers: Annotated[int, msgspec.Meta(ge=1, le=64)] = 4
    queue_size: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 64
    batch_wait_ms: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 20
    unknown_nonverbals: Literal["warn", "reject"] = "warn"
    # Long text with a voice that has no audio prompt: every chunk after the first is
    # conditioned on the first chunk's audio and text, as a cloned voice on its prompt,
    # so the speaker does not change between chunks. A request may turn it off.
    chunk_continuity: bool = True


class LoggingConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    save_outputs: bool = False
    show_prompts: bool = False
    output_retention_hours: Annotated[float, msgspec.Meta(ge=0, le=24 * 365)] = 24.0
    job_retention_hours: Annotated[float, msgspec.Meta(ge=0, le=24 * 365)] = 1.0


# A URL path: starts with "/", no spaces, no query or fragment.
UrlPath = Annotated[str, msgspec.Meta(pattern=r"^/[A-Za-z0-9._~/-]*$")]


class MetricsConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True
    path: UrlPath = "/metrics"


class TracingConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    # OpenTelemetry spans of the request path; needs ``pip install 'ttsframe[otel]'``.
    enabled: bool = False
    # OTLP/HTTP traces URL, e.g. "http://127.0.0.1:4318/v1/traces"; "" uses the standard
    # OTEL_EXPORTER_OTLP_* environment variables when set.
    otlp_endpoint: str = ""
    service_name: str = "ttsframe"


class ClusterConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[cluster]``: where backends run. "local": one thread per backend in this process;
    "ray": ``replicas`` Ray actors per backend, anywhere on a Ray cluster (docs/deployment.md)."""

    engine: Literal["local", "ray"] = "local"
    # A Ray address ("ray://host:10001", "host:6379"); "auto": the cluster this machine
    # belongs to; "": start a Ray instance on this machine.
    address: str = ""
    replicas: Annotated[int, msgspec.Meta(ge=1, le=1024)] = 1
    # GPUs each replica asks Ray for; None: 1 when the cluster has GPUs, else 0.
    gpus_per_replica: Annotated[float, msgspec.Meta(ge=0, le=64)] | None = None
    cpus_per_replica: Annotated[float, msgspec.Meta(ge=0, le=1024)] = 1.0


class UiConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    # Serve the web page at / and /ui/ (ttsframe/http/ui.py).
    enabled: bool = True


class LiveConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[live]``: text sessions that speak text as it is written (docs/live-speech.md)."""

    enabled: bool = True
    # Segmenting: a clause end releases held text once it is this long (characters); a
    # word boundary releases it at max_segment_chars; held text that ends a sentence is
    # released after sentence_wait_ms without new text, any other after release_wait_ms.
    clause_chars: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 80
    max_segment_chars: Annotated[int, msgspec.Meta(ge=16, le=10_000)] = 250
    sentence_wait_ms: Annotated[int, msgspec.Meta(ge=0, le=60_000)] = 150
    release_wait_ms: Annotated[int, msgspec.Meta(ge=0, le=60_000)] = 1000
    # Segments generating ahead of the one being sent (each holds at most one segment's
    # audio in memory).
    segments_ahead: Annotated[int, msgspec.Meta(ge=0, le=16)] = 4
    # A session with no message for idle_timeout_s is closed (ElevenLabs clients may ask
    # for up to max_idle_timeout_s with inactivity_timeout).
    idle_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=86_400)] = 20.0
    max_idle_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=86_400)] = 180.0
    # The longest a session stays open, and the text one session may send in all.
    max_session_s: Annotated[float, msgspec.Meta(gt=0, le=86_400)] = 900.0
    max_session_chars: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)] = 50_000
    # One WebSocket message, in bytes.
    max_message_bytes: Annotated[int, msgspec.Meta(ge=1024, le=16_777_216)] = 65_536
    # Sessions open at once (a multi-stream context counts as one), in all and per key.
    max_sessions: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 64
    max_sessions_per_key: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 8
    max_contexts_per_socket: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 5
    # Audio messages waiting for a client that does not read: past send_buffer, generating
    # pauses; a client that reads nothing for slow_client_s is disconnected (4008).
    send_buffer: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 32
    slow_client_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 10.0
class VoicesConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    # Names a request may send for another voice, on every route: {"coral": "narrator"}.
    # An alias wins over a voice of the same name; its target must be a voice, not an alias.
    aliases: dict[str, str] = {}


class QualityConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[quality]``: the checks every take passes before it is used (``core/speech/quality``)."""

    enabled: bool = True
    # Takes generated again for a chunk that failed a check (each with its own seed).
    max_retries: Annotated[int, msgspec.Meta(ge=0, le=10)] = 2
    # No retry starts once this long has passed since the request was queued.
    retry_budget_s: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 120.0
    # Each check on or off, and its bounds.
    check_budget: bool = True
    check_rate: bool = True
    check_silence: bool = True
    check_clipping: bool = True
    check_loop: bool = True
    # Seconds of audio per character: [fastest, slowest], per "backend" or
    # "backend:language"; a backend's own default applies where none is set.
    speech_rates: dict[str, list[Annotated[float, msgspec.Meta(gt=0, le=10)]]] = {}
    # Texts shorter than this (characters, speaker tags aside) are not rate-checked.
    rate_min_chars: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 20
    # Seconds a take may run beyond its slowest rate before it counts as too slow.
    rate_slack_s: Annotated[float, msgspec.Meta(ge=0, le=600)] = 2.0
    # A voice's accepted takes narrow its bounds once this many are known (0: never).
    calibration_takes: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 10
    max_leading_silence_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 1.5
    max_trailing_silence_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 2.0
    max_inner_silence_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 2.5
    # Quieter than this (dBFS, in 20 ms frames) is silence.
    silence_dbfs: Annotated[float, msgspec.Meta(ge=-120, le=0)] = -50.0
    # Share of samples at full scale (|x| >= 0.999) above which a take is clipped.
    max_clipped_share: Annotated[float, msgspec.Meta(ge=0, le=0.5)] = 0.005
    # A take whose last seconds repeat one phrase for this long ends in a loop.
    max_loop_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 3.0


class Settings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    security: SecurityConfig = msgspec.field(default_factory=SecurityConfig)
    storage: StorageConfig = msgspec.field(default_factory=StorageConfig)
    generation: GenerationConfig = msgspec.field(default_factory=GenerationConfig)
    logging: LoggingConfig = msgspec.field(default_factory=LoggingConfig)
    metrics: MetricsConfig = msgspec.field(default_factory=MetricsConfig)
    tracing: TracingConfig = msgspec.field(default_factory=TracingConfig)
    cluster: ClusterConfig = msgspec.field(default_factory=ClusterConfig)
    ui: UiConfig = msgspec.field(default_factory=UiConfig)
    live: LiveConfig = msgspec.field(default_factory=LiveConfig)
    voices: VoicesConfig = msgspec.field(default_factory=VoicesConfig)
    quality: QualityConfig = msgspec.field(default_factory=QualityConfig)
    # ``[plugins.<name>]`` sections, validated by each plugin's own config type.
    plugins: dict[str, dict[str, Any]] = {}
    # Where the file came from; not a config key.
    config_path: str | None = None
    # From TTSFRAME_LOAD_PLUGINS="a,b": load only these plugins (tests, debugging).
    plugin_allowlist: list[str] | None = None

    @property
    def base_dir(self) -> Path:
        return Path(self.config_path).parent if self.config_path else Path.cwd()

    def path(self, value: str) -> Path:
        """Resolve a configured path against the config file's directory."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base_dir / p).resolve()

    @property
    def data_dir(self) -> Path:
        return self.path(self.storage.data_dir)

    def plugin_enabled(self, plugin: str) -> bool:
        if self.plugin_allowlist is not None and plugin not in self.plugin_allowlist:
            return False
        return bool(self.plugins.get(plugin, {}).get("enabled", True))

    def plugin_section(self, plugin: str) -> dict[str, Any]:
        return {k: v for k, v in self.plugins.get(plugin, {}).items() if k != "enabled"}


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _parse_env_value(raw: str) -> Any:
    """Read an environment value as a TOML literal when it is one, else as a string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def env_overrides(environ: typing.Mapping[str, str]) -> dict[str, Any]:
    """``TTSFRAME_SERVER__PORT=8000`` -> ``{"server": {"port": 8000}}``."""
    out: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX):].split("__")]
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = _parse_env_value(raw)
    return out


def find_config_file(explicit: str | None, environ: typing.Mapping[str, str]) -> Path | None:
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"config file {explicit!r} does not exist")
        return path.resolve()
    if environ.get("TTSFRAME_CONFIG"):
        return find_config_file(environ["TTSFRAME_CONFIG"], {})
    local = Path.cwd() / DEFAULT_CONFIG_NAME
    return local.resolve() if local.is_file() else None


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def load_settings(
    config_file: str | None = None,
    *,
    environ: typing.Mapping[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Build the effective settings; raise ``ConfigError`` naming the bad key."""
    environ = os.environ if environ is None else environ
    path = find_config_file(config_file, environ)
    raw: dict[str, Any] = read_toml(path) if path else {}
    raw = _deep_merge(raw, env_overrides(environ))
    raw = _deep_merge(raw, overrides or {})
    raw["config_path"] = str(path) if path else None
    allow = environ.get("TTSFRAME_LOAD_PLUGINS")
    if allow is not None:
        raw["plugin_allowlist"] = [p.strip() for p in allow.split(",") if p.strip()]
    return convert(raw, Settings, prefix="")


def convert(raw: Any, type_: type, *, prefix: str) -> Any:
    """``msgspec.convert`` with errors that name the key and its allowed values."""
    try:
        return msgspec.convert(raw, type_, strict=False)
    except msgspec.ValidationError:
        raise ConfigError(describe_invalid(raw, type_, prefix)) from None


def describe_invalid(raw: Any, type_: Any, key: str, *, strict: bool = False) -> str:
    """Why ``raw`` is not a ``type_``, naming the offending key in the project's own words.

    Structs are walked field by field here instead of reading the key out of msgspec's
    message, whose wording and path format are the library's and change between releases;
    only the reason for a single value is msgspec's text, shown as it is.
    """
    if isinstance(type_, type) and issubclass(type_, msgspec.Struct) and isinstance(raw, dict):
        hints = typing.get_type_hints(type_, include_extras=True)
        for name, value in raw.items():
            full = ".".join(p for p in (key, str(name)) if p)
            if name not in type_.__struct_fields__:
                allowed = _field_names(type_)
                hint = f"; known keys: {', '.join(allowed)}" if allowed else ""
                return f"unknown config key '{full}'{hint}"
            try:
                msgspec.convert(value, hints[name], strict=strict)
            except msgspec.ValidationError:
                return describe_invalid(value, hints[name], full, strict=strict)
    item = _item_type(type_)
    if item is not None and isinstance(raw, list):
        for index, value in enumerate(raw):
            try:
                msgspec.convert(value, item, strict=strict)
            except msgspec.ValidationError:
                return describe_invalid(value, item, f"{key}[{index}]", strict=strict)
    try:
        msgspec.convert(raw, type_, strict=strict)
        reason = "not accepted"
    except msgspec.ValidationError as exc:
        reason = str(exc).split(" - at `")[0]
    allowed = _allowed_values(type_)
    hint = f"; allowed values: {allowed}" if allowed else ""
    return f"invalid value for '{key or 'config'}': {reason}{hint}"


def _item_type(type_: Any) -> Any:
    """The element type of ``list[X]`` (also inside ``Annotated``), else None."""
    if typing.get_origin(type_) is Annotated:
        type_ = typing.get_args(type_)[0]
    if typing.get_origin(type_) is list:
        return typing.get_args(type_)[0]
    return None


def _field_names(type_: Any) -> list[str]:
    if isinstance(type_, type) and issubclass(type_, msgspec.Struct):
        return [f for f in type_.__struct_fields__
                if f not in ("config_path", "plugin_allowlist")]
    return []


def _allowed_values(target: Any) -> str:
    if typing.get_origin(target) is Literal:
        return ", ".join(repr(v) for v in typing.get_args(target))
    if typing.get_origin(target) is Annotated:
        base, *metas = typing.get_args(target)
        bounds = []
        for meta in metas:
            if isinstance(meta, msgspec.Meta):
                for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
                    if getattr(meta, attr, None) is not None:
                        bounds.append(f"{sym} {getattr(meta, attr)}")
        return f"{base.__name__} {' and '.join(bounds)}".strip()
    if isinstance(target, type):
        return target.__name__
    return ""

