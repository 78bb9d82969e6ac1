"""The OneDrive provider against the Graph emulator, signed in through its identity platform."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.conformance.harness import (
    CUT_STREAM,
    FEED_RESET,
    RANGED,
    RATE_LIMIT,
    TOKEN_EXPIRY,
    WRONG_HASH,
)
from tests.providers.oauth_harness import OAuthHarness
from tests.providers.oauth_harness import sign_in as oauth_sign_in
from tests.providers.onedrive.emulator import AccountKind, OneDriveEmulator
from vpack.providers.kit.oauth import OAuthSpec, TokenSet, env_name
from vpack.providers.onedrive.provider import OneDriveProvider

CLIENT_ID = "3f1c2a7e-0d4b-4e55-9c1a-vpack0nedrive"
REDIRECT = "http://testserver/api/cloud/onedrive/oauth/callback"
SCOPES = list(OneDriveProvider.oauth.scopes) if OneDriveProvider.oauth else []


def emulator_env(od: OneDriveEmulator, **extra: str) -> dict[str, str]:
    """The operator settings that point the provider at the emulator (tenant left to
    the {tenant} default, as in production)."""
    return {
        env_name("onedrive", "CLIENT_ID"): CLIENT_ID,
        env_name("onedrive", "AUTH_URL"): f"{od.base_url}/{{tenant}}/oauth2/v2.0/authorize",
        env_name("onedrive", "TOKEN_URL"): f"{od.base_url}/{{tenant}}/oauth2/v2.0/token",
        env_name("onedrive", "API_URL"): od.graph_url,
        **extra,
    }


def sign_in(od: OneDriveEmulator, scopes: list[str] | None = None) -> TokenSet:
    """Signed in with PKCE as a public client, as our callback does."""
    with httpx.Client() as http:
        return oauth_sign_in(
            http,
            od.authorize_url(),
            od.token_url(),
            client_id=CLIENT_ID,
            redirect_uri=REDIRECT,
            scope=" ".join(scopes or SCOPES),
        )


class OneDriveHarness(OAuthHarness):
    name = "onedrive"
    provider_name = "onedrive"
    provider_class = OneDriveProvider
    label = "OneDrive"
    capabilities = frozenset({RANGED, RATE_LIMIT, TOKEN_EXPIRY, CUT_STREAM, WRONG_HASH, FEED_RESET})
    account: AccountKind = "personal"

    def __init__(self, base: Path) -> None:
        self.od = self.emulator = OneDriveEmulator(
            client_id=CLIENT_ID, redirect_uris=[REDIRECT], account=self.account
        ).start()
        self.use_env(emulator_env(self.od))
        self.project = self.od.add_folder("Project")
        self.area = self.od.add_folder("Area", self.project)
        self.tokens = sign_in(self.od)
        self._folders: dict[str, str] = {}
        self._files: dict[tuple[str, str], str] = {}

    def node(self, item_id: str) -> str:
        return f"{self.od.drive_id}:{item_id}"

    def selection(self) -> str:
        return self.node(self.area)

    def oauth_spec(self) -> OAuthSpec:
        return OAuthSpec(
            provider=self.provider_name,
            authorize_url=self.od.authorize_url(),
            token_url=self.od.token_url(),
            client_id=CLIENT_ID,
            redirect_uri=REDIRECT,
            scopes=SCOPES,
            refresh_with_scope=True,
        )

    # ------------------------------------------------------------ content
    def _camera_folder(self, camera: str) -> str:
        if camera not in self._folders:
            self._folders[camera] = self.od.add_folder(camera, self.area)
        return self._folders[camera]

    async def add_video(self, camera: str, name: str, data: bytes) -> None:
        folder = self._camera_folder(camera)
        item = await asyncio.to_thread(self.od.add_file, name, folder, data)
        self._files[camera, name] = item

    async def remove_video(self, camera: str, name: str) -> None:
        await asyncio.to_thread(self.od.delete, self._files.pop((camera, name)))

    async def add_folders(self, parent: str | None, names: list[str]) -> str:
        where = parent.partition(":")[2] if parent else self.area
        for name in names:
            self.od.add_folder(name, where)
        return self.node(where)

    # ------------------------------------------------------------ faults
    async def rate_limit_next(self, requests: int, retry_after: float) -> None:
        self.od.throttle_next(requests, retry_after=retry_after)

    async def forget_feed_tokens(self) -> None:
        self.od.expire_delta_tokens()
