"""The Google Drive provider against the Drive emulator, signed in through its OAuth pages."""

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
from tests.providers.google_drive.emulator import DriveEmulator
from tests.providers.oauth_harness import OAuthHarness
from tests.providers.oauth_harness import sign_in as oauth_sign_in
from vpack.providers.google_drive.provider import GoogleDriveProvider
from vpack.providers.kit.oauth import OAuthSpec, TokenSet, env_name

CLIENT_ID = "vpack-drive-test.apps.googleusercontent.com"
CLIENT_SECRET = "drive-client-secret-5b1e"
REDIRECT = "http://testserver/api/cloud/google_drive/oauth/callback"
SCOPE = GoogleDriveProvider.oauth.scopes[0] if GoogleDriveProvider.oauth else ""


def sign_in(drive: DriveEmulator) -> TokenSet:
    """Signed in with PKCE and the client secret (a Google web client), as our callback does."""
    with httpx.Client() as http:
        return oauth_sign_in(
            http,
            drive.authorize_url,
            drive.token_url,
            client_id=CLIENT_ID,
            redirect_uri=REDIRECT,
            scope=SCOPE,
            secret=CLIENT_SECRET,
            access_type="offline",
            prompt="consent",
        )


class GoogleDriveHarness(OAuthHarness):
    name = "google_drive"
    provider_name = "google_drive"
    provider_class = GoogleDriveProvider
    label = "Drive"
    capabilities = frozenset({RANGED, RATE_LIMIT, TOKEN_EXPIRY, CUT_STREAM, WRONG_HASH, FEED_RESET})

    def __init__(self, base: Path) -> None:
        self.drive = self.emulator = DriveEmulator(
            client_id=CLIENT_ID, client_secret=CLIENT_SECRET, redirect_uris=[REDIRECT]
        ).start()
        self.use_env(
            {
                env_name(self.provider_name, "CLIENT_ID"): CLIENT_ID,
                env_name(self.provider_name, "CLIENT_SECRET"): CLIENT_SECRET,
                env_name(self.provider_name, "AUTH_URL"): self.drive.authorize_url,
                env_name(self.provider_name, "TOKEN_URL"): self.drive.token_url,
                env_name(self.provider_name, "API_URL"): self.drive.api_url,
            }
        )
        self.project = self.drive.add_folder("Project")
        self.area = self.drive.add_folder("Area", self.project)
        self.tokens = sign_in(self.drive)
        self._folders: dict[str, str] = {}
        self._files: dict[tuple[str, str], str] = {}

    def selection(self) -> str:
        return self.area

    def oauth_spec(self) -> OAuthSpec:
        return OAuthSpec(
            provider=self.provider_name,
            authorize_url=self.drive.authorize_url,
            token_url=self.drive.token_url,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            redirect_uri=REDIRECT,
            scopes=[SCOPE],
        )

    # ------------------------------------------------------------ content
    def _camera_folder(self, camera: str) -> str:
        if camera not in self._folders:
            self._folders[camera] = self.drive.add_folder(camera, self.area)
        return self._folders[camera]

    async def add_video(self, camera: str, name: str, data: bytes) -> None:
        folder = self._camera_folder(camera)
        file_id = await asyncio.to_thread(self.drive.add_file, name, folder, data)
        self._files[camera, name] = file_id

    async def remove_video(self, camera: str, name: str) -> None:
        await asyncio.to_thread(self.drive.trash, self._files.pop((camera, name)))

    async def add_folders(self, parent: str | None, names: list[str]) -> str:
        where = parent or self.area
        for name in names:
            self.drive.add_folder(name, where)
        return where

    # ------------------------------------------------------------ faults
    async def rate_limit_next(self, requests: int, retry_after: float) -> None:
        self.drive.rate_limit_next(requests, retry_after=retry_after)

    async def forget_feed_tokens(self) -> None:
        self.drive.forget_change_tokens()
