"""Every knob of the service, read from VPACK_* environment variables."""

from __future__ import annotations

from datetime import tzinfo
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vpack.disk import Floor, parse_floor
from vpack.security.destinations import IPNetwork, parse_networks


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VPACK_", extra="ignore")

    data_dir: Path = Field(
        default=Path("./data"), description="Where the database and videos live."
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default is SQLite in the data dir (WAL on)."
    )
    secret_key: str | None = Field(default=None, description="Base64 32-byte vault key.")
    previous_secret_keys: str = Field(
        default="",
        description="Retired vault keys still accepted for decryption, comma-separated base64.",
    )

    concurrency: int = Field(default=4, ge=1, le=64, description="Downloads running at once.")
    lease_seconds: int = Field(default=300, ge=10, description="How long a claimed video is ours.")
    max_attempts: int = Field(default=6, ge=1, description="Transient failures before giving up.")
    retry_base_seconds: float = Field(default=30.0, gt=0, description="First backoff step.")
    retry_cap_seconds: float = Field(default=6 * 3600.0, gt=0, description="Longest backoff step.")
    fsync: bool = Field(default=True, description="Make videos durable before recording them.")
    timezone: str = Field(
        default="",
        description="IANA zone the date folders of copies follow, e.g. Asia/Ho_Chi_Minh "
        "(empty: this machine's zone).",
    )
    scheduler_tick_seconds: float = Field(
        default=5.0, gt=0, description="How often due work is looked for."
    )

    session_hours: float = Field(default=12.0, gt=0, description="How long a login lasts.")
    cookie_secure: bool = Field(
        default=False, description="Send the session cookie over HTTPS only (set behind TLS)."
    )
    blocked_networks: str = Field(
        default="127.0.0.0/8,::1/128,0.0.0.0/8,169.254.0.0/16,fe80::/10",
        description="Networks users may not point recorders or custom endpoints at through "
        "the API, comma-separated CIDRs: by default this machine's loopback and link-local "
        "(cloud metadata) addresses. Empty: no limit.",
    )
    local_roots: str = Field(
        default="",
        description="Folders users may sync through the API, separated by ':' (CLI: any).",
    )
    sink_commands: str = Field(
        default="",
        description="Programs (absolute paths, ':'-separated) a command sink may run; empty: none.",
    )
    api_rate_limit: str = Field(
        default="600/minute", description="Requests per signed-in user (limits syntax)."
    )
    login_failure_limit: str = Field(
        default="5/minute", description="Failed logins per IP and per account."
    )
    rate_limit_storage: str = Field(
        default="memory://", description="Where rate-limit windows live (e.g. redis://host:6379)."
    )
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, description="Largest request body.")
    retention_check_seconds: float = Field(
        default=600, ge=1, description="How often copies past their source's keep_days go."
    )
    min_free: str = Field(
        default="1GiB",
        description="Free space to keep on the data disk (2GiB, 500MB, 5%); below it no new "
        "download starts.",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Where browsers reach this service; OAuth redirect URIs are built on it.",
    )

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                message = f"unknown time zone {value!r} (use a name like Asia/Ho_Chi_Minh)"
                raise ValueError(message) from None
        return value

    @field_validator("min_free")
    @classmethod
    def _floor(cls, value: str) -> str:
        parse_floor(value)  # a ValueError says what is wrong
        return value

    @field_validator("blocked_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        parse_networks(value)  # a ValueError names the bad entry
        return value

    @property
    def free_space_floor(self) -> Floor:
        return parse_floor(self.min_free)

    @property
    def blocked(self) -> list[IPNetwork]:
        return parse_networks(self.blocked_networks)

    @property
    def zone(self) -> tzinfo | None:
        """The configured zone; None means this machine's own."""
        return ZoneInfo(self.timezone) if self.timezone else None

    @property
    def videos_dir(self) -> Path:
        return self.data_dir / "videos"

    @property
    def staging_dir(self) -> Path:
        return self.data_dir / "staging"

    @property
    def allowed_local_roots(self) -> list[str]:
        return [str(Path(p).expanduser().resolve()) for p in self.local_roots.split(":") if p]

    @property
    def default_database_file(self) -> Path | None:
        """The SQLite file in the data dir, unless VPACK_DATABASE_URL names a database."""
        return None if self.database_url else self.data_dir / "vpack.db"

    @property
    def sqlalchemy_url(self) -> str:
        """The configured URL, or SQLite in the data dir."""
        return self.database_url or f"sqlite:///{self.default_database_file}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
