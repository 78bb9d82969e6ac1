"""A recorder reached by address on the LAN or over a VPN: its settings, one HTTP
client for it, the plain-words reasons it cannot be reached, and LanRecorder, the
base such providers stand on."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncIterator, Awaitable
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from pydantic import AfterValidator, BaseModel, Field, SecretStr, field_validator

from vpack.providers.base import AuthKind, Identity, RemoteVideo
from vpack.providers.errors import AuthExpired, BadConfig, ProviderError, RateLimited, Transient
from vpack.providers.kit.device_auth import DeviceAuth
from vpack.providers.kit.http import ApiClient, HttpPolicy, new_client
from vpack.providers.kit.recorder import RecorderProvider, refuse_resume, whole_recording

_T = TypeVar("_T")


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r} (use a name like Asia/Ho_Chi_Minh)"
        ) from None
    return value


# Recorders write wall-clock times in the zone they are set to, whatever the transport.
DeviceTimeZone = Annotated[
    str,
    AfterValidator(_known_zone),
    Field(description="The time zone the device clock is set to."),
]


class LanDeviceSettings(BaseModel):
    host: str = Field(
        min_length=1, description="IP address or host name of the NVR or camera (no http://)."
    )
    port: int | None = Field(
        default=None, ge=1, le=65535, description="HTTP(S) port; empty: 80, or 443 with HTTPS."
    )
    https: bool = False
    verify_certificate: bool = Field(
        default=True,
        description="Check the device's TLS certificate. NVRs ship self-signed ones: "
        "turn this off only for a device on a network you trust.",
    )
    username: str = Field(min_length=1, description="A user with the Remote Playback right.")
    password: SecretStr
    time_zone: DeviceTimeZone = "Asia/Ho_Chi_Minh"
    timeout_seconds: float = Field(default=60.0, ge=1, le=600)

    @field_validator("host")
    @classmethod
    def _bare_host(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if "://" in value or "/" in value:
            raise ValueError("give the address only, e.g. 192.168.1.64 (choose HTTPS separately)")
        return value

    @property
    def where(self) -> str:
        """host[:port], as messages name the device."""
        return f"{self.host}:{self.port}" if self.port else self.host


def device_client(settings: LanDeviceSettings) -> httpx.AsyncClient:
    """One client for the device, signing in with Digest or Basic as it asks."""
    scheme = "https" if settings.https else "http"
    return new_client(
        base_url=f"{scheme}://{settings.where}",
        auth=DeviceAuth(settings.username, settings.password.get_secret_value()),
        verify=settings.verify_certificate if settings.https else True,
        timeout=httpx.Timeout(
            settings.timeout_seconds, connect=min(15.0, settings.timeout_seconds)
        ),
    )


def unreachable(where: str, exc: Transient) -> BadConfig:
    """Why a device did not answer a connection check, in words a user can act on."""
    cause = exc.__cause__
    text = str(cause or exc)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return BadConfig(
            f"the TLS certificate of {where} is not trusted (NVRs ship self-signed ones); "
            "turn off the certificate check only for a device on a network you trust"
        )
    if isinstance(cause, httpx.TimeoutException):
        return BadConfig(f"{where} did not answer in time: check the address and port")
    return BadConfig(
        f"cannot reach {where}: check the address and port, and that this server "
        f"reaches the recorder's network (same LAN or a VPN) ({text})"
    )


class LanRecorder(RecorderProvider):
    """A recorder on the LAN: one client for the device (with retries, and without for
    checks that must answer at once), a connection check that says what to fix, and
    downloads of whole recordings."""

    auth = AuthKind.DEVICE
    config: LanDeviceSettings

    def __init__(self, config: BaseModel, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._api: ApiClient | None = None
        self._once: ApiClient | None = None  # no retries: check() answers at once

    @abstractmethod
    def describe(self, response: httpx.Response) -> ProviderError:
        """A device's refusal (status and body) as one of our errors."""

    @abstractmethod
    async def recording_response(self, video: RemoteVideo) -> httpx.Response:
        """The device's streamed answer carrying the recording (closed by the caller)."""

    @property
    def where(self) -> str:
        return self.config.where

    def open(self, video: RemoteVideo, offset: int = 0) -> AsyncIterator[bytes]:
        return self._recording(video, offset)

    async def _recording(self, video: RemoteVideo, offset: int) -> AsyncIterator[bytes]:
        refuse_resume(offset)
        response = await self.recording_response(video)
        announced = response.headers.get("content-length")
        if announced is not None and video.size is not None and int(announced) != video.size:
            await response.aclose()
            raise Transient(
                f"{video.path or video.name}: the device announced {announced} bytes for a "
                f"recording it listed at {video.size}",
                restart=True,
            )
        async for chunk in whole_recording(response, video.path or video.name):
            yield chunk

    def destinations(self) -> list[str]:
        return [self.config.host]

    def _clients(self) -> tuple[ApiClient, ApiClient]:
        if self._api is None or self._once is None:
            self.http = device_client(self.config)
            self._api = ApiClient(self.http, self.describe, policy=HttpPolicy(attempts=3))
            self._once = ApiClient(self.http, self.describe, policy=HttpPolicy(attempts=1))
        return self._api, self._once

    async def checked(self, answer: Awaitable[_T]) -> _T:
        """The first answer of a connection check, its failures in words a user acts on:
        a refused or locked login, or a device that cannot be reached."""
        try:
            return await answer
        except (AuthExpired, RateLimited) as exc:
            raise BadConfig(str(exc)) from None
        except Transient as exc:
            raise unreachable(self.where, exc) from None

    async def clock_problem(self) -> str | None:
        """What is off about the device's clock or zone, for the check; None: nothing."""
        return None

    async def identity(self, brand: str, details: dict[str, Any]) -> Identity:
        """The check's answer: the device by its serial, named by its name and model, with
        a clock warning where its clock or zone is off."""
        warning = await self.clock_problem()
        if warning:
            details["clock_warning"] = warning
        name = details.get("device_name") or brand
        return Identity(
            id=details.get("serial") or self.where,
            label=f"{name} {details.get('model', '')} ({self.where})".strip(),
            details=details,
        )

    async def aclose(self) -> None:
        self._api = self._once = None
        await super().aclose()
