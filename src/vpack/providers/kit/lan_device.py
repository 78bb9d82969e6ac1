"""A recorder reached by address on the LAN or over a VPN: its settings, one HTTP
client for it, and the plain-words reasons it cannot be reached."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from pydantic import AfterValidator, BaseModel, Field, SecretStr, field_validator

from vpack.providers.errors import BadConfig, Transient
from vpack.providers.kit.device_auth import DeviceAuth
from vpack.providers.kit.http import new_client


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
