"""The agent's configuration: one ``agent.toml`` per TRE.

The file says who the TRE is, where the agent keeps its work, which resource limits apply, which datasets
the built-in executors may read, where the TRE's GA4GH TES server is, and, above all, which approved
workflows this TRE runs and with which executor. A job whose workflow (identifier *and* version) has no
``[[workflows]]`` entry is refused: the TRE decides what runs inside it, never the request.

Everything is validated when the file is loaded, so a mistake is reported once, at start-up, with the
offending key spelt out (``[limits] memory_bytes: expected ...``), rather than when a job arrives.
See ``agent/agent.example.toml`` for a commented example.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlparse

__all__ = [
    "AcceptPolicy",
    "AgentConfig",
    "BitfountSettings",
    "ContainerSettings",
    "ConfigError",
    "DataShieldSettings",
    "Dataset",
    "Limits",
    "SandboxSettings",
    "TesSettings",
    "TreIdentity",
    "WorkflowNotApprovedError",
    "WorkflowRoute",
    "load_config",
    "parse_config",
]

_SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
_DATASET_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")
_SQL_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_SIZE_RE = re.compile(r"^\s*(\d+)\s*(B|KiB|MiB|GiB|TiB)?\s*$")
_SIZE_UNITS = {None: 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}


class ConfigError(ValueError):
    """The configuration is missing, unreadable or invalid; the message names the offending key."""


class WorkflowNotApprovedError(LookupError):
    """A job names a workflow (identifier and version) that this TRE has not mapped to an executor."""

    def __init__(self, workflow_id: str, version: str, tre: str) -> None:
        super().__init__(
            f"workflow {workflow_id!r} version {version!r} is not approved for execution at TRE {tre!r}: "
            "agent.toml has no [[workflows]] entry with this id and version"
        )
        self.workflow_id = workflow_id
        self.version = version


@dataclass(frozen=True)
class TreIdentity:
    """The TRE the agent runs in, as named in result crates (publisher of the agent's actions)."""

    slug: str
    name: str
    url: str


@dataclass(frozen=True)
class Limits:
    """Resource limits for one job. Every value is positive."""

    timeout_seconds: int
    cpu_seconds: int
    memory_bytes: int
    max_output_file_bytes: int

    def tightened(self, overrides: Mapping[str, int]) -> Limits:
        """Return these limits with ``overrides`` applied, never loosening any of them.

        A workflow entry may ask for less than the TRE's limits but never more: the TRE-wide value is the
        ceiling that operators reason about.
        """
        return dataclasses.replace(
            self, **{key: min(getattr(self, key), value) for key, value in overrides.items()}
        )


@dataclass(frozen=True)
class SandboxSettings:
    """How local executors start processes (see :mod:`agent.sandbox`)."""

    path: str = "/usr/local/bin:/usr/bin:/bin"
    require_network_isolation: bool = False
    cancel_grace_seconds: float = 15.0
    max_open_files: int = 1024


_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_ULIMIT_RE = re.compile(r"^[a-z]+=-?\d+(:-?\d+)?$")


@dataclass(frozen=True)
class AcceptPolicy:
    """What this TRE accepts, whatever the portal sends (``[accept]``); ``None`` means "not narrowed here".

    ``projects`` are project identifiers as the portal names them; ``executors`` the executor names a route
    may use; ``workflow_sha256`` the SHA-256 of the Workflow RO-Crate zips this TRE has vetted;
    ``container_digests`` the only container images (``sha256:...``) a workflow may run. Containers are
    deny-by-default: with no digests listed, no containerised step runs.
    """

    projects: frozenset[str] | None = None
    executors: frozenset[str] | None = None
    workflow_sha256: frozenset[str] | None = None
    container_digests: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ContainerSettings:
    """How CWL ``DockerRequirement`` steps run (``[containers]``): podman, from the local store only.

    ``runtime`` and ``ulimits`` are passed to every ``podman run`` (some hosts need ``runc`` and explicit
    ulimits); ``pids_limit`` caps processes per container; memory comes from the route's limits.
    """

    podman: Path = Path("/usr/bin/podman")
    runtime: str | None = None
    ulimits: tuple[str, ...] = ()
    pids_limit: int = 512


@dataclass(frozen=True)
class Dataset:
    """A dataset the built-in executors may read: exactly one of ``sqlite_path`` and ``postgresql_dsn``.

    The DSN may carry a password, so it is kept out of ``repr`` (and hence out of logs and tracebacks).
    """

    name: str
    sqlite_path: Path | None = None
    postgresql_dsn: str | None = field(default=None, repr=False)
    schema: str | None = None

    @property
    def engine(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return "sqlite" if self.sqlite_path is not None else "postgresql"


@dataclass(frozen=True)
class TesSettings:
    """The TRE's GA4GH TES server and the storage area both the agent and the TES server can reach.

    ``storage_dir`` is the agent's path to that area and ``storage_url`` is how the TES server names it
    (``file:///...`` for a Funnel local-storage directory); the agent stages job inputs there and collects
    declared outputs from there.
    """

    url: str
    storage_dir: Path
    storage_url: str
    token_file: Path | None = None
    poll_seconds: float = 2.0
    request_timeout_seconds: int = 10


@dataclass(frozen=True)
class DataShieldSettings:
    """The TRE's Opal server, which the ``datashield`` executor calls over its DataSHIELD REST API.

    ``token_file`` holds an Opal personal access token (sent only in the ``X-Opal-Auth`` header); it is read
    when a job runs, never kept here. ``verify`` is what ``requests`` takes: ``True``, ``False`` or the
    path of a CA bundle.
    """

    url: str
    token_file: Path
    verify: bool | str = True
    poll_seconds: float = 1.0
    request_timeout_seconds: int = 30


@dataclass(frozen=True)
class BitfountSettings:
    """How the ``bitfount`` executor runs Bitfount's modeller (see :mod:`agent.executors.bitfount`).

    ``executable`` is the ``bitfount`` command of a separate Python 3.12 environment; ``username`` is the
    Bitfount account the TRE runs tasks as. The API key files are read when a job runs and their contents
    reach the modeller only through its environment, never a task file. ``env`` adds variables (e.g.
    ``BITFOUNT_ENVIRONMENT``, ``HTTPS_PROXY``) to the modeller's minimal environment.
    """

    executable: Path
    username: str
    api_key_id_file: Path
    api_key_file: Path
    private_key_file: Path | None = None
    timeout_seconds: int | None = None
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class WorkflowRoute:
    """How this TRE runs one approved workflow version.

    ``options`` is the executor-specific options object returned by the executor class's
    ``parse_options`` (already validated); ``limits`` are the effective limits for the workflow.
    """

    workflow_id: str
    version: str
    executor: str
    options: Any
    limits: Limits


@dataclass(frozen=True)
class AgentConfig:
    """The whole validated configuration of one agent."""

    tre: TreIdentity
    work_dir: Path
    limits: Limits
    sandbox: SandboxSettings = SandboxSettings()
    accept: AcceptPolicy = AcceptPolicy()
    containers: ContainerSettings | None = None
    datasets: Mapping[str, Dataset] = field(default_factory=lambda: MappingProxyType({}))
    tes: TesSettings | None = None
    bitfount: BitfountSettings | None = None
    datashield: DataShieldSettings | None = None
    workflows: Mapping[tuple[str, str], WorkflowRoute] = field(default_factory=lambda: MappingProxyType({}))

    def route(self, workflow_id: str, version: str) -> WorkflowRoute:
        """The route for an approved workflow version; raises :class:`WorkflowNotApprovedError` otherwise."""
        try:
            return self.workflows[(workflow_id, version)]
        except KeyError:
            raise WorkflowNotApprovedError(workflow_id, version, self.tre.slug) from None

    def dataset(self, name: str) -> Dataset:
        """The named dataset; raises :class:`ConfigError` if the TRE configured none by that name."""
        try:
            return self.datasets[name]
        except KeyError:
            raise ConfigError(f"no dataset named {name!r} in [datasets]") from None


def load_config(path: str | Path) -> AgentConfig:
    """Read and validate ``agent.toml``; relative paths in it are relative to the file's directory."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration file ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    try:
        return parse_config(data, base_dir=path.resolve().parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def parse_config(data: Mapping[str, Any], *, base_dir: Path) -> AgentConfig:
    """Validate an already-parsed TOML document; ``base_dir`` anchors relative paths."""
    root = Table(data, "", base_dir)
    tre_table = root.table("tre")
    tre = TreIdentity(
        slug=tre_table.string("slug", pattern=_SLUG_RE, hint="lower-case letters, digits and hyphens"),
        name=tre_table.string("name"),
        url=tre_table.url("url"),
    )
    tre_table.finish()

    agent_table = root.table("agent")
    work_dir = agent_table.path("work_dir")
    agent_table.finish()

    limits_table = root.table("limits")
    limits = Limits(
        timeout_seconds=limits_table.integer("timeout_seconds", minimum=1),
        cpu_seconds=limits_table.integer("cpu_seconds", minimum=1),
        memory_bytes=limits_table.size("memory_bytes", minimum=64 << 20),
        max_output_file_bytes=limits_table.size("max_output_file_bytes", minimum=1),
    )
    limits_table.finish()

    sandbox = SandboxSettings()
    if "sandbox" in data:
        sandbox_table = root.table("sandbox")
        sandbox = SandboxSettings(
            path=sandbox_table.string("path", default=sandbox.path),
            require_network_isolation=sandbox_table.boolean(
                "require_network_isolation", default=sandbox.require_network_isolation
            ),
            cancel_grace_seconds=sandbox_table.number(
                "cancel_grace_seconds", default=sandbox.cancel_grace_seconds, minimum=0
            ),
            max_open_files=sandbox_table.integer(
                "max_open_files", default=sandbox.max_open_files, minimum=16
            ),
        )
        sandbox_table.finish()

    datasets: dict[str, Dataset] = {}
    if "datasets" in data:
        datasets_table = root.table("datasets")
        for name in datasets_table.keys():
            if not _DATASET_NAME_RE.match(name):
                raise ConfigError(
                    f"[datasets.{name}]: dataset names are a letter then letters, digits, _ or -"
                )
            datasets[name] = _parse_dataset(name, datasets_table.table(name))
        datasets_table.finish()

    tes = None
    if "tes" in data:
        tes = _parse_tes(root.table("tes"))

    bitfount = None
    if "bitfount" in data:
        bitfount = _parse_bitfount(root.table("bitfount"))

    datashield = None
    if "datashield" in data:
        datashield = _parse_datashield(root.table("datashield"))

    accept = AcceptPolicy()
    if "accept" in data:
        accept = _parse_accept(root.table("accept"))

    containers = None
    if "containers" in data:
        containers = _parse_containers(root.table("containers"))

    config = AgentConfig(
        tre=tre,
        work_dir=work_dir,
        limits=limits,
        sandbox=sandbox,
        accept=accept,
        containers=containers,
        datasets=MappingProxyType(datasets),
        tes=tes,
        bitfount=bitfount,
        datashield=datashield,
    )
    workflows = _parse_workflows(root.array_of_tables("workflows"), config)
    root.finish()
    return dataclasses.replace(config, workflows=MappingProxyType(workflows))


def _parse_dataset(name: str, table: Table) -> Dataset:
    sqlite_path = table.path("sqlite_path", default=None)
    dsn = table.string("postgresql_dsn", default=None)
    dsn_file = table.path("postgresql_dsn_file", default=None)
    schema = table.string("schema", default=None, pattern=_SQL_IDENTIFIER_RE, hint="an SQL identifier")
    table.finish()
    if dsn_file is not None:
        if dsn is not None:
            raise ConfigError(f"[datasets.{name}]: give postgresql_dsn or postgresql_dsn_file, not both")
        try:
            dsn = dsn_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"[datasets.{name}] postgresql_dsn_file: cannot read {dsn_file} ({exc.strerror})"
            ) from None
    if (sqlite_path is None) == (dsn is None):
        raise ConfigError(f"[datasets.{name}]: give exactly one of sqlite_path and postgresql_dsn(_file)")
    if sqlite_path is not None and schema is not None:
        raise ConfigError(f"[datasets.{name}] schema: only PostgreSQL datasets have a schema")
    if dsn is not None and not dsn.startswith(("postgresql://", "postgres://")) and "=" not in dsn:
        raise ConfigError(f"[datasets.{name}] postgresql_dsn: expected a postgresql:// URL or key=value DSN")
    return Dataset(name=name, sqlite_path=sqlite_path, postgresql_dsn=dsn, schema=schema)


def _parse_accept(table: Table) -> AcceptPolicy:
    from agent.executors import EXECUTORS

    def names(key: str, pattern: re.Pattern[str] | None = None, hint: str = "") -> frozenset[str] | None:
        values = table.string_list(key, default=None)
        if values is None:
            return None
        for value in values:
            if pattern is not None and not pattern.match(value):
                raise ConfigError(f"[accept] {key}: {value!r} is not valid ({hint})")
        return frozenset(values)

    executors = names("executors")
    unknown = sorted((executors or frozenset()) - set(EXECUTORS))
    if unknown:
        raise ConfigError(f"[accept] executors: {', '.join(unknown)} is not an executor of this agent")
    policy = AcceptPolicy(
        projects=names("projects"),
        executors=executors,
        workflow_sha256=names("workflow_sha256", _SHA256_RE, "64 lower-case hex digits"),
        container_digests=names("container_digests", _DIGEST_RE, "sha256: then 64 lower-case hex digits")
        or frozenset(),
    )
    table.finish()
    return policy


def _parse_containers(table: Table) -> ContainerSettings:
    ulimits = table.string_list("ulimits", default=[])
    for ulimit in ulimits:
        if not _ULIMIT_RE.match(ulimit):
            raise ConfigError(f"[containers] ulimits: {ulimit!r} is not NAME=SOFT[:HARD]")
    settings = ContainerSettings(
        podman=table.path("podman", default=ContainerSettings.podman),
        runtime=table.string(
            "runtime", default=None, pattern=re.compile(r"^[A-Za-z0-9_./-]+$"), hint="a runtime name or path"
        ),
        ulimits=tuple(ulimits),
        pids_limit=table.integer("pids_limit", default=ContainerSettings.pids_limit, minimum=16),
    )
    table.finish()
    return settings


def _parse_tes(table: Table) -> TesSettings:
    url = table.url("url")
    storage_dir = table.path("storage_dir")
    storage_url = table.string("storage_url", default=storage_dir.as_uri())
    if urlparse(storage_url).scheme not in {"file", "s3", "http", "https"}:
        raise ConfigError("[tes] storage_url: expected a file://, s3:// or http(s):// URL")
    settings = TesSettings(
        url=url,
        storage_dir=storage_dir,
        storage_url=storage_url.rstrip("/"),
        token_file=table.path("token_file", default=None),
        poll_seconds=table.number("poll_seconds", default=2.0, minimum=0.01),
        request_timeout_seconds=table.integer("request_timeout_seconds", default=10, minimum=1),
    )
    table.finish()
    return settings


def _parse_datashield(table: Table) -> DataShieldSettings:
    url = table.url("url").rstrip("/")
    token_file = table.path("token_file")
    verify_tls = table.boolean("verify_tls", default=True)
    ca_bundle = table.path("ca_bundle", default=None)
    if ca_bundle is not None and not verify_tls:
        raise ConfigError("[datashield] ca_bundle: a CA bundle is only used when verify_tls = true")
    settings = DataShieldSettings(
        url=url,
        token_file=token_file,
        verify=str(ca_bundle) if ca_bundle is not None else verify_tls,
        poll_seconds=table.number("poll_seconds", default=1.0, minimum=0.01),
        request_timeout_seconds=table.integer("request_timeout_seconds", default=30, minimum=1),
    )
    table.finish()
    return settings


# A Bitfount username (bitfount.federated.helper.USERNAME_REGEX) and the environment variables the
# bitfount executor sets itself, which [bitfount] env must not override.
_BITFOUNT_USERNAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9]|[-_](?=[a-z0-9])){0,38}$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_BITFOUNT_RESERVED_ENV = frozenset(
    {
        "PATH",
        "HOME",
        "TMPDIR",
        "BITFOUNT_API_KEY_ID",
        "BITFOUNT_API_KEY",
        "BITFOUNT_TASK_RESULTS_DIR",
        "BITFOUNT_OUTPUT_DIR",
        "BITFOUNT_LOGS_DIR",
    }
)


def _parse_bitfount(table: Table) -> BitfountSettings:
    env = table.string_map("env", default={})
    for name in env:
        if not _ENV_NAME_RE.match(name) or name.upper() in _BITFOUNT_RESERVED_ENV:
            raise ConfigError(
                f"[bitfount] env: {name!r} cannot be set here (the agent sets it, or it is not a name)"
            )
    timeout = table.integer("timeout_seconds", minimum=1) if "timeout_seconds" in table.data else None
    settings = BitfountSettings(
        executable=table.path("executable"),
        username=table.string(
            "username",
            pattern=_BITFOUNT_USERNAME_RE,
            hint="a Bitfount username: lower-case letters, digits, - and _",
        ),
        api_key_id_file=table.path("api_key_id_file"),
        api_key_file=table.path("api_key_file"),
        private_key_file=table.path("private_key_file", default=None),
        timeout_seconds=timeout,
        env=MappingProxyType(env),
    )
    table.finish()
    return settings


def _parse_workflows(entries: list[Table], config: AgentConfig) -> dict[tuple[str, str], WorkflowRoute]:
    # Imported here: the executors import this module for its types.
    from agent.executors import EXECUTORS

    routes: dict[tuple[str, str], WorkflowRoute] = {}
    for entry in entries:
        workflow_id = entry.string("id")
        version = entry.string("version")
        executor = entry.string("executor", choices=sorted(EXECUTORS))
        where = f"{entry.where} (id {workflow_id!r} version {version!r})"
        if (workflow_id, version) in routes:
            raise ConfigError(f"{where}: this workflow version is mapped twice")
        options_table = entry.table("options", default={})
        try:
            executor_class = EXECUTORS[executor]
        except ImportError as exc:
            raise ConfigError(
                f"{where}: the {executor} executor needs a Python package this agent lacks ({exc.name})"
            ) from None
        options = executor_class.parse_options(options_table, config)
        options_table.finish()
        limits = config.limits
        if "limits" in entry.data:
            limits_table = entry.table("limits")
            overrides = {}
            for key in ("timeout_seconds", "cpu_seconds"):
                if key in limits_table.data:
                    overrides[key] = limits_table.integer(key, minimum=1)
            for key in ("memory_bytes", "max_output_file_bytes"):
                if key in limits_table.data:
                    overrides[key] = limits_table.size(key, minimum=1)
            limits_table.finish()
            limits = limits.tightened(overrides)
        entry.finish()
        routes[(workflow_id, version)] = WorkflowRoute(
            workflow_id=workflow_id, version=version, executor=executor, options=options, limits=limits
        )
    return routes


class Table:
    """A TOML table read with typed accessors that name the offending key in every error.

    Each accessor records the key as used; :meth:`finish` then rejects any key nobody asked for, so a
    misspelt setting is an error rather than a silently ignored default.
    """

    _MISSING: Any = object()

    def __init__(self, data: Any, where: str, base_dir: Path) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where or 'the document'}: expected a table")
        self.data: Mapping[str, Any] = data
        self.where = where
        self.base_dir = base_dir
        self._used: set[str] = set()

    def _key(self, key: str) -> str:
        return f"{self.where} {key}" if self.where else key

    def _get(self, key: str, default: Any) -> Any:
        self._used.add(key)
        if key in self.data:
            return self.data[key]
        if default is self._MISSING:
            raise ConfigError(f"{self._key(key)}: required setting is missing")
        return default

    def keys(self) -> list[str]:
        """The keys present in the table."""
        return list(self.data)

    def table(self, key: str, default: Any = _MISSING) -> Table:
        """A sub-table; ``[name]`` in TOML."""
        value = self._get(key, default)
        if not self.where:
            where = f"[{key}]"
        elif self.where.startswith("[["):
            where = f"{self.where}.{key}"
        else:
            where = f"[{self.where[1:-1]}.{key}]"
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a table")
        return Table(value, where, self.base_dir)

    def array_of_tables(self, key: str) -> list[Table]:
        """An array of tables (``[[name]]``); missing means empty."""
        value = self._get(key, [])
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected an array of tables ([[{key}]])")
        return [Table(item, f"[[{key}]] #{index + 1}", self.base_dir) for index, item in enumerate(value)]

    def string(
        self,
        key: str,
        default: Any = _MISSING,
        *,
        pattern: re.Pattern[str] | None = None,
        hint: str = "",
        choices: list[str] | None = None,
    ) -> Any:
        """A non-empty string, optionally matching ``pattern`` or one of ``choices``."""
        value = self._get(key, default)
        if value is default and key not in self.data:
            return value
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{self._key(key)}: expected a non-empty string, got {value!r}")
        if pattern is not None and not pattern.match(value):
            raise ConfigError(f"{self._key(key)}: {value!r} is not valid ({hint or pattern.pattern})")
        if choices is not None and value not in choices:
            raise ConfigError(f"{self._key(key)}: {value!r} is not one of {', '.join(choices)}")
        return value

    def string_list(self, key: str, default: Any = _MISSING) -> Any:
        """A list of strings."""
        value = self._get(key, default)
        if value is default and key not in self.data:
            return value
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ConfigError(f"{self._key(key)}: expected a list of strings")
        return list(value)

    def string_map(self, key: str, default: Any = _MISSING) -> Any:
        """A table of string values."""
        value = self._get(key, default)
        if value is default and key not in self.data:
            return value
        if not isinstance(value, Mapping) or not all(isinstance(item, str) for item in value.values()):
            raise ConfigError(f"{self._key(key)}: expected a table of strings")
        return dict(value)

    def url(self, key: str, default: Any = _MISSING) -> Any:
        """An absolute http(s) URL."""
        value = self.string(key, default)
        if value is default and key not in self.data:
            return value
        parsed = urlparse(value)
        if parsed.scheme not in {"http", "https"} or not parsed.netloc:
            raise ConfigError(f"{self._key(key)}: expected an http(s) URL, got {value!r}")
        return value

    def path(self, key: str, default: Any = _MISSING) -> Any:
        """A filesystem path, made absolute against the configuration file's directory."""
        value = self.string(key, default)
        if value is default and key not in self.data:
            return value
        return (self.base_dir / Path(value).expanduser()).resolve()

    def boolean(self, key: str, default: Any = _MISSING) -> Any:
        """``true`` or ``false``."""
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise ConfigError(f"{self._key(key)}: expected true or false, got {value!r}")
        return value

    def integer(self, key: str, default: Any = _MISSING, *, minimum: int | None = None) -> Any:
        """An integer, at least ``minimum``."""
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{self._key(key)}: expected an integer, got {value!r}")
        if minimum is not None and value < minimum:
            raise ConfigError(f"{self._key(key)}: must be at least {minimum}, got {value}")
        return value

    def number(self, key: str, default: Any = _MISSING, *, minimum: float | None = None) -> Any:
        """An integer or float, at least ``minimum``."""
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{self._key(key)}: expected a number, got {value!r}")
        if minimum is not None and value < minimum:
            raise ConfigError(f"{self._key(key)}: must be at least {minimum}, got {value}")
        return float(value)

    def size(self, key: str, default: Any = _MISSING, *, minimum: int = 0) -> Any:
        """A byte count: an integer, or a string such as ``"2 GiB"`` (units B, KiB, MiB, GiB, TiB)."""
        value = self._get(key, default)
        if isinstance(value, str) and (match := _SIZE_RE.match(value)):
            value = int(match.group(1)) * _SIZE_UNITS[match.group(2)]
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(
                f'{self._key(key)}: expected a byte count such as 1048576 or "2 GiB", got {value!r}'
            )
        if value < minimum:
            raise ConfigError(f"{self._key(key)}: must be at least {minimum} bytes, got {value}")
        return value

    def finish(self) -> None:
        """Reject keys that no accessor asked for (typically a misspelling)."""
        unknown = sorted(set(self.data) - self._used)
        if unknown:
            where = self.where or "top level"
            raise ConfigError(f"{where}: unknown setting(s) {', '.join(map(repr, unknown))}")
