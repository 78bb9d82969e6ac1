"""Request and response bodies of the API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from vpack.db.models import Role
from vpack.sync.filters import SourceFilters

DbId = Annotated[int, Field(ge=1, le=2**31 - 1)]  # INTEGER ids, as in deps.MAX_ID


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    password: str = Field(min_length=1, max_length=1024)


class NewUser(Credentials):
    role: Role = Role.USER


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    role: str
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None


class UserChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    disabled: bool | None = None
    role: Role | None = None


class SetupState(BaseModel):
    needed: bool  # true until the first administrator exists


class LoginOut(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_at: datetime
    csrf_token: str


class ProviderOut(BaseModel):
    name: str
    label: str
    description: str
    auth: str
    config_schema: dict[str, Any]
    source_options_schema: dict[str, Any]
    filters_schema: dict[str, Any] = Field(
        description="what every source may filter on (the same for every provider)"
    )
    features: dict[str, Any]


class NewConnection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=200)
    config: dict[str, Any] = Field(default_factory=dict)


class ConnectionOut(BaseModel):
    id: int
    provider: str
    name: str
    account: str | None
    status: str
    status_detail: str | None
    config: dict[str, Any]  # never holds secrets: those live only in the vault
    created_at: datetime


class NodeOut(BaseModel):
    id: str
    name: str
    kind: str
    has_children: bool
    selectable: bool


class BrowseOut(BaseModel):
    nodes: list[NodeOut]
    next_page: str | None


# Days a local copy is kept after publish; it goes only once every sink has it.
KeepDays = Annotated[
    int | None,
    Field(
        default=None,
        ge=0,
        le=36500,
        description="delete local copies this many days after publish (null: keep them)",
    ),
]


class NewSource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connection_id: DbId
    name: str = Field(min_length=1, max_length=200)
    selections: list[str] = Field(min_length=1, max_length=200)
    cameras: dict[str, str] = Field(default_factory=dict)
    interval_s: int = Field(default=300, ge=10, le=7 * 24 * 3600)
    filters: SourceFilters = Field(default_factory=SourceFilters)
    options: dict[str, Any] = Field(default_factory=dict)
    keep_days: KeepDays = None


class SourceChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    selections: list[str] | None = Field(default=None, min_length=1, max_length=200)
    cameras: dict[str, str] | None = None
    interval_s: int | None = Field(default=None, ge=10, le=7 * 24 * 3600)
    filters: SourceFilters | None = None
    options: dict[str, Any] | None = None
    keep_days: KeepDays = None  # sent as null: keep for ever again


class SourceOut(BaseModel):
    id: int
    connection_id: DbId
    provider: str
    name: str
    selections: list[str]
    selection_names: dict[str, str] = Field(
        description="selection -> its name at the provider when the source was saved"
    )
    cameras: dict[str, Any]
    interval_s: int
    filters: dict[str, Any]
    options: dict[str, Any]
    keep_days: int | None
    status: str
    last_error: str | None
    last_scan_at: datetime | None
    next_scan_at: datetime | None
    counts: dict[str, int]


class InFlight(BaseModel):
    video_id: int
    name: str
    bytes_done: int
    size: int | None


class SourceStatusOut(BaseModel):
    id: int
    state: str
    connection_status: str
    counts: dict[str, int]
    bytes_done: int
    bytes_total: int
    current: list[InFlight]
    last_error: str | None
    last_scan_at: datetime | None
    next_scan_at: datetime | None


class VideoOut(BaseModel):
    id: int
    source_id: int
    camera: str
    name: str
    remote_path: str
    size: int | None
    sha256: str | None
    state: str
    error: str | None
    probe_error: str | None
    recorded_start: datetime | None
    recorded_end: datetime | None
    duration_s: float | None
    codecs: str | None
    local_path: str | None
    removed_at: datetime | None
    removed_local_at: datetime | None = Field(
        description="when retention deleted our copy (the row and the original stay)"
    )
    downloaded_at: datetime | None
    created_at: datetime


class VideoPage(BaseModel):
    items: list[VideoOut]
    next_cursor: str | None


class FeedItem(BaseModel):
    """One published video, as a consumer such as VPACK's pipeline takes it."""

    seq: int = Field(description="its place in publish order; pass the last one back as after")
    id: int
    source_id: int
    camera: str
    name: str
    path: str = Field(description="absolute path of the verified copy on the server")
    content_url: str = Field(description="the copy over HTTP, with Range")
    size: int | None
    sha256: str | None
    recorded_start: datetime | None
    recorded_end: datetime | None
    published_at: datetime | None


class FeedPage(BaseModel):
    items: list[FeedItem]
    after: int = Field(description="where the next call starts; unchanged when nothing is new")


class SinkKindOut(BaseModel):
    name: str
    label: str
    config_schema: dict[str, Any]


class NewSink(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(min_length=1, max_length=20)
    name: str = Field(min_length=1, max_length=200)
    config: dict[str, Any]
    from_start: bool = Field(
        default=True,
        description="also hand on what the source published before; false: only new videos",
    )


class SinkChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    config: dict[str, Any] | None = None
    enabled: bool | None = Field(
        default=None, description="true starts a stopped sink again, at once; false stops it"
    )


class SinkOut(BaseModel):
    id: int
    source_id: int
    kind: str
    name: str
    config: dict[str, Any] = Field(description="its settings; secrets are never shown")
    status: str
    status_detail: str | None
    failures: int
    delivered: int
    after_seq: int
    next_attempt_at: datetime | None
    created_at: datetime


class DeliveryOut(BaseModel):
    id: int
    video_id: int
    seq: int
    ok: bool
    detail: str | None
    at: datetime


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    user_id: int | None
    action: str
    target_type: str | None
    target_id: str | None
    ip: str | None
    detail: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditOut]
    next_cursor: str | None


class DownloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connection_id: DbId
    items: list[str] = Field(min_length=1, max_length=200)
    name: str | None = Field(default=None, max_length=200)


class Accepted(BaseModel):
    source_id: int
    status: str = "queued"


class OAuthStart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    connection_id: DbId | None = None  # reconnect this connection (after reauth_required)


class OAuthStarted(BaseModel):
    auth_url: str
    state: str


class VpackImportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(
        min_length=1, max_length=4096, description="VPACK's events.db on this server."
    )
    dry_run: bool = False
    redownload_missing: bool = False


class VpackSourceOutcome(BaseModel):
    vpack_id: int
    vpack_name: str
    kind: str
    outcome: str
    reason: str | None
    source_id: int | None
    connection_id: int | None
    sign_in_again: bool
    interval_s: int | None
    selections: list[str]


class VpackFileOutcome(BaseModel):
    vpack_id: int
    path: str
    outcome: str
    reason: str | None


class VpackImportOut(BaseModel):
    database: str
    dry_run: bool
    sources: list[VpackSourceOutcome]
    videos: dict[str, int]
    not_imported: list[VpackFileOutcome]
