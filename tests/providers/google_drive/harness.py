"""The Google Drive provider against the Drive emulator, signed in through its OAuth pages."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from tests.conformance.harness import (
    CUT_STREAM,
    FEED_RESET,
    RANGED,
    RATE_LIMIT,
    TOKEN_EXPIRY,
    WRONG_HASH,
    Harness,
)
from tests.providers.google_drive.emulator import DriveEmulator
from vpack import catalog
from vpack.connections import ConnectionManager
from vpack.providers.base import Provider
from vpack.providers.google_drive.provider import GoogleDriveProvider
from vpack.providers.kit.oauth import OAuthSpec, TokenManager, TokenSet, env_name
from vpack.services import Services

CLIENT_ID = "vpack-drive-test.apps.googleusercontent.com"
CLIENT_SECRET = "drive-client-secret-5b1e"
REDIRECT = "http://testserver/api/cloud/google_drive/oauth/callback"
SCOPE = GoogleDriveProvider.oauth.scopes[0] if GoogleDriveProvider.oauth else ""


def sign_in(drive: DriveEmulator) -> TokenSet:
    """The authorization-code flow with PKCE, as a browser and our callback would run it."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    query = urlencode(
        {
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT,
            "response_type": "code",
            "scope": SCOPE,
            "state": "harness",
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
            "access_type": "offline",
            "prompt": "consent",
        }
    )
    back = httpx.get(f"{drive.authorize_url}?{query}", follow_redirects=False)
    code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
    answer = httpx.post(
        drive.token_url,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "code_verifier": verifier,
        },
    )
    answer.raise_for_status()
    return TokenSet.from_response(answer.json())


class GoogleDriveHarness(Harness):
    name = "google_drive"
    provider_name = "google_drive"
    capabilities = frozenset({RANGED, RATE_LIMIT, TOKEN_EXPIRY, CUT_STREAM, WRONG_HASH, FEED_RESET})

    def __init__(self, base: Path) -> None:
        self.drive = DriveEmulator(
            client_id=CLIENT_ID, client_secret=CLIENT_SECRET, redirect_uris=[REDIRECT]
        ).start()
        self.env = {
            env_name(self.provider_name, "CLIENT_ID"): CLIENT_ID,
            env_name(self.provider_name, "CLIENT_SECRET"): CLIENT_SECRET,
            env_name(self.provider_name, "AUTH_URL"): self.drive.authorize_url,
            env_name(self.provider_name, "TOKEN_URL"): self.drive.token_url,
            env_name(self.provider_name, "API_URL"): self.drive.api_url,
        }
        self._saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        self.project = self.drive.add_folder("Project")
        self.area = self.drive.add_folder("Area", self.project)
        self.tokens = sign_in(self.drive)
        self._folders: dict[str, str] = {}
        self._files: dict[tuple[str, str], str] = {}

    # ------------------------------------------------------------ connection
    def connection_config(self) -> dict[str, Any]:
        return {}

    def bad_connection_config(self) -> dict[str, Any]:
        return {"tokens": "revoked"}

    def selection(self) -> str:
        return self.area

    def build(self, config: dict[str, Any] | None = None) -> Provider:
        tokens = self.tokens
        if config == self.bad_connection_config():
            tokens = TokenSet(access_token="not-issued", refresh_token="not-issued-either")
        spec = OAuthSpec(
            provider=self.provider_name,
            authorize_url=self.drive.authorize_url,
            token_url=self.drive.token_url,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            redirect_uri=REDIRECT,
            scopes=[SCOPE],
        )
        http = httpx.AsyncClient()

        async def keep(new: TokenSet) -> None:
            self.tokens = new

        return GoogleDriveProvider(
            GoogleDriveProvider.Config(), tokens=TokenManager(spec, tokens, http, keep), http=http
        )

    async def add_source(self, services: Services, **options: Any) -> int:
        """Stored as the OAuth callback stores it: tokens in the vault, checked first."""
        connection = await connect(services.connections, self.tokens)
        return await catalog.add_source(
            services.db,
            services.connections,
            connection_id=connection,
            name="Drive source",
            selections=[self.selection()],
            options={**self.source_options(), **options},
            interval_s=60,
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

    async def expire_token(self) -> None:
        self.drive.expire_access_tokens()

    async def forget_feed_tokens(self) -> None:
        self.drive.forget_change_tokens()

    async def cut_next_download(self, after_bytes: int) -> None:
        self.drive.cut_next_download(after_bytes)

    async def corrupt_next_download(self) -> None:
        self.drive.corrupt_next_download()

    async def aclose(self) -> None:
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        await asyncio.to_thread(self.drive.stop)


async def connect(
    connections: ConnectionManager, tokens: TokenSet, owner: int | None = None
) -> int:
    connection, _, _ = await connections.connect_oauth(
        provider="google_drive",
        owner_id=owner,  # type: ignore[arg-type]
        tokens=tokens,
        name="Drive",
        reconnect_id=None,
    )
    return connection.id
