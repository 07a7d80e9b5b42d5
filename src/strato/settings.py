"""One Settings object for the whole platform.

Sources, strongest first: arguments given in code, ``STRATO_*`` environment
variables, a ``strato.toml`` file, the defaults below. Nested sections are
reached from the environment with one underscore after the section name
(``STRATO_AUTH_ANONYMOUS_READ``, ``STRATO_LOG_FORMAT``).
Nothing here runs at import time: callers build Settings and pass them down.

The core defines its own sections; each capability brings its section (a
:class:`Section` with a ``key``, e.g. ``strato.catalog.settings.CatalogSettings``),
which joins Settings under that key: ``[catalog]`` in the file, ``STRATO_CATALOG_*``
in the environment, ``settings.catalog`` at run time, and typed as
``CatalogSettings.of(settings)``. ``Settings(...)`` builds the class that holds the
sections of every installed capability (made once, on first use).
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, create_model, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from strato.redact import mask_tree, mask_url

CONFIG_ENV = "STRATO_CONFIG"
DEFAULT_CONFIG_FILE = "strato.toml"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "strato"


class Section(BaseModel):
    # Sections ignore unknown keys because ``STRATO_DATA_DIR`` is also offered to a
    # section named ``data`` by the nested-variable splitter; the top level forbids them.
    model_config = ConfigDict(extra="ignore")
    # Where a capability's section lives in Settings (and the file and environment).
    key: ClassVar[str] = ""

    @classmethod
    def of(cls, settings: Settings) -> Self:
        """This capability's section of ``settings``, typed."""
        section = getattr(settings, cls.key, None) if cls.key else None
        if not isinstance(section, cls):
            raise LookupError(f"settings have no {cls.key or cls.__name__!r} section")
        return section


class AuthSettings(Section):
    anonymous_read: bool = Field(
        True, description="Allow requests without credentials on read-only routes."
    )
    admin_user: str = Field("admin", description="Name of the administrator created by `up`.")
    token_default_expiry: str = Field(
        "never", description="Lifetime of new tokens when none is given: 30d, 12h, 90m or never."
    )
    token_cache_seconds: float = Field(
        5.0,
        ge=0,
        le=300,
        description="Seconds a checked token is trusted without asking the database again "
        "(0: ask every time). Revoking a token or disabling a user takes effect at once "
        "in the process that does it; in other processes of the deployment after at most "
        "this long.",
    )
    # Each password check costs argon2 work on purpose; past these limits a caller hears
    # 429 with Retry-After before any check runs. Tokens are not limited: they cost a hash.
    failures_per_user: int = Field(
        10, ge=1, description="Wrong passwords for one user name per window, from anywhere."
    )
    failures_per_address: int = Field(
        30, ge=1, description="Wrong passwords from one client address per window, any user."
    )
    failure_window: int = Field(
        60, ge=1, le=86_400, description="Seconds over which wrong passwords are counted."
    )
    failure_tracking: int = Field(
        10_000,
        ge=1,
        description="Most user names, and most addresses, counted at once; the least "
        "recently failed are forgotten first.",
    )


class LogSettings(Section):
    format: Literal["text", "json"] = Field("text", description="Log line format.")
    level: str = Field("INFO", description="Python logging level name.")
    access: bool = Field(True, description="Log one line per HTTP request.")


class CapabilitiesSettings(Section):
    disabled: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Capabilities switched off, by name (comma-separated in the environment): "
        "their routes, pages, background work and migrations are left out.",
    )

    @field_validator("disabled", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value


class BusSettings(Section):
    url: str | None = Field(
        None,
        description="Event bus: nats://host:4222 (JetStream), kafka://host:9092, or "
        "sqlite:///path; default an embedded SQLite log bus.db in the data directory.",
    )


class HeapSettings(Section):
    # strato.heap.limit_allocator: glibc's mmap threshold fixed and its arenas few, so the
    # memory a long-running server frees goes back to the system (bench/soak.py). Off
    # leaves the allocator as glibc (or MALLOC_* variables) set it.
    limit_allocator: bool = Field(
        True,
        description="In long-running processes, fix glibc's mmap threshold at 128 KiB and "
        "its arenas at 2, so freed memory can be given back to the system.",
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="STRATO_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="forbid",
        validate_default=True,
    )

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Where strato keeps its database, tokens and generated data.",
    )
    database_url: SecretStr | None = Field(
        None,
        description="SQLAlchemy URL; default: SQLite file strato.db in the data directory. "
        "postgresql://... and mysql://... (MariaDB) are supported.",
    )
    # strato.db.dialects.base.POOL_SIZE says why 40, and why 5 are kept.
    database_pool_size: int = Field(
        40,
        ge=1,
        description="Most database connections a process opens at once (5 are kept when "
        "idle). The web server runs up to 40 requests at once, each using one; on "
        "PostgreSQL and MariaDB, every process's pool counts against max_connections.",
    )
    host: str = Field("127.0.0.1", description="Address the web server binds to.")
    port: int = Field(8000, ge=0, le=65535, description="Port the web server binds to.")
    node_name: str = Field("local", description="Name of this node in a federation.")
    public_url: str | None = Field(
        None, description="Base URL users reach this node at; default http://host:port."
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed by CORS; empty disables CORS."
    )
    max_body_bytes: int = Field(
        16 * 1024 * 1024,
        ge=1024,
        description="Largest request body the web server reads (16 MiB); larger ones "
        "answer 413, chunked ones as soon as they cross it.",
    )
    dask_scheduler: str | None = Field(
        None, description="Address of a Dask distributed scheduler; default: threads in-process."
    )
    auth: AuthSettings = Field(default_factory=AuthSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    # The event bus is shared: any capability may publish or consume through the Context.
    bus: BusSettings = Field(default_factory=BusSettings)
    capabilities: CapabilitiesSettings = Field(default_factory=CapabilitiesSettings)
    heap: HeapSettings = Field(default_factory=HeapSettings)

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        # The core class alone lacks the capabilities' sections: build the class that
        # has them, so every ``Settings(...)`` reads and checks them all.
        target: type[Any] = settings_class() if cls is Settings else cls
        instance: Self = super().__new__(target)
        return instance

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled by value: the class with the sections is made at run time, so pickle
        # cannot find it by name (a process pool shipping settings to its workers).
        return (_restore, (self.__getstate__(),))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls)

    @property
    def database_url_value(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{self.data_dir / 'strato.db'}"

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104
        return f"http://{host}:{self.port}"

    def public_dump(self) -> dict[str, Any]:
        """The effective configuration with secrets masked, for display."""
        data = self.model_dump(mode="json")
        data["database_url"] = mask_url(self.database_url_value)
        # Every other URL (bus, peers, scheduler) may carry credentials as well.
        masked: dict[str, Any] = mask_tree(data)
        return masked


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build Settings from a TOML file (explicit, ``$STRATO_CONFIG`` or ./strato.toml)."""
    path = config_file or _config_from_env()
    if path is not None and not path.is_file():
        from strato.errors import InvalidInput

        raise InvalidInput(f"configuration file {path} does not exist")
    if path is None and Path(DEFAULT_CONFIG_FILE).is_file():
        path = Path(DEFAULT_CONFIG_FILE)
    if path is None:
        return Settings(**overrides)
    return settings_class(path)(**overrides)


def settings_to_json(settings: Settings) -> dict[str, Any]:
    """Every value of ``settings``, secrets included, as JSON: how a server hands its own
    settings to the processes it starts (job workers), over a pipe of their own, so they
    work on its database and files whatever their environment says. Never pickled."""
    from pydantic_core import to_jsonable_python

    def reveal(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        if isinstance(value, dict):
            return {k: reveal(v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [reveal(v) for v in value]
        return value

    dumped: dict[str, Any] = to_jsonable_python(reveal(settings.model_dump(mode="python")))
    return dumped


def settings_from_json(data: dict[str, Any]) -> Settings:
    """The Settings :func:`settings_to_json` wrote, from those values alone: validated,
    but not merged with this process's environment or configuration file."""
    built: Settings = settings_class().model_validate(data)
    return built


def _config_from_env() -> Path | None:
    value = os.environ.get(CONFIG_ENV)
    return Path(value) if value else None


def _restore(state: dict[Any, Any]) -> Settings:
    instance: Settings = object.__new__(settings_class())
    instance.__setstate__(state)
    return instance


@cache
def settings_class(toml_file: Path | None = None) -> type[Settings]:
    """Settings with the section of every installed capability, read from ``toml_file``."""
    from strato.capabilities import capability_sections

    base: type[Settings] = Settings
    if toml_file is not None:

        class FileSettings(Settings):
            model_config = SettingsConfigDict(toml_file=toml_file)

        base = FileSettings
    fields: dict[str, Any] = {}
    for key, section in capability_sections().items():
        if key in Settings.model_fields:
            raise ValueError(f"a capability's settings section {key!r} is a core setting")
        fields[key] = (section, Field(default_factory=section))
    built: type[Settings] = create_model("Settings", __base__=base, **fields)
    return built
