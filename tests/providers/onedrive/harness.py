"""The OneDrive provider against the Graph emulator, signed in through its identity platform."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

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
from tests.providers.onedrive.emulator import AccountKind, OneDriveEmulator
from vpack import catalog
from vpack.connections import ConnectionManager
from vpack.providers.base import Provider
from vpack.providers.kit.oauth import OAuthSpec, TokenManager, TokenSet, env_name
from vpack.providers.onedrive.provider import OneDriveProvider
from vpack.services import Services

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
    """The authorization-code flow with PKCE (a public client), as a browser and our
    callback would run it."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    back = httpx.get(
        od.authorize_url(),
        params={
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT,
            "response_type": "code",
            "scope": " ".join(scopes or SCOPES),
            "state": "harness",
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
        },
    )
    code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
    answer = httpx.post(
        od.token_url(),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": CLIENT_ID,
            "code_verifier": verifier,
        },
    )
    answer.raise_for_status()
    return TokenSet.from_response(answer.json())


class OneDriveHarness(Harness):
    name = "onedrive"
    provider_name = "onedrive"
    capabilities = frozenset({RANGED, RATE_LIMIT, TOKEN_EXPIRY, CUT_STREAM, WRONG_HASH, FEED_RESET})
    account: AccountKind = "personal"

    def __init__(self, base: Path) -> None:
        self.od = OneDriveEmulator(
            client_id=CLIENT_ID, redirect_uris=[REDIRECT], account=self.account
        ).start()
        self.env = emulator_env(self.od)
        self._saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        self.project = self.od.add_folder("Project")
        self.area = self.od.add_folder("Area", self.project)
        self.tokens = sign_in(self.od)
        self._folders: dict[str, str] = {}
        self._files: dict[tuple[str, str], str] = {}

    def node(self, item_id: str) -> str:
        return f"{self.od.drive_id}:{item_id}"

    # ------------------------------------------------------------ connection
    def connection_config(self) -> dict[str, Any]:
        return {}

    def bad_connection_config(self) -> dict[str, Any]:
        return {"tokens": "revoked"}

    def selection(self) -> str:
        return self.node(self.area)

    def build(self, config: dict[str, Any] | None = None) -> Provider:
        tokens = self.tokens
        if config == self.bad_connection_config():
            tokens = TokenSet(access_token="not-issued", refresh_token="not-issued-either")
        spec = OAuthSpec(
            provider=self.provider_name,
            authorize_url=self.od.authorize_url(),
            token_url=self.od.token_url(),
            client_id=CLIENT_ID,
            redirect_uri=REDIRECT,
            scopes=SCOPES,
            refresh_with_scope=True,
        )
        http = httpx.AsyncClient()

        async def keep(new: TokenSet) -> None:
            self.tokens = new  # rotated: the old refresh token is dead at the emulator

        return OneDriveProvider(
            OneDriveProvider.Config(), tokens=TokenManager(spec, tokens, http, keep), http=http
        )

    async def add_source(self, services: Services, **options: Any) -> int:
        """Stored as the OAuth callback stores it: tokens in the vault, checked first."""
        connection = await connect(services.connections, self.tokens)
        return await catalog.add_source(
            services.db,
            services.connections,
            connection_id=connection,
            name="OneDrive source",
            selections=[self.selection()],
            options={**self.source_options(), **options},
            interval_s=60,
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

    async def expire_token(self) -> None:
        self.od.expire_access_tokens()

    async def forget_feed_tokens(self) -> None:
        self.od.expire_delta_tokens()

    async def cut_next_download(self, after_bytes: int) -> None:
        self.od.cut_next_download(after_bytes)

    async def corrupt_next_download(self) -> None:
        self.od.corrupt_next_download()

    async def aclose(self) -> None:
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        await asyncio.to_thread(self.od.stop)


async def connect(
    connections: ConnectionManager, tokens: TokenSet, owner: int | None = None
) -> int:
    connection, _, _ = await connections.connect_oauth(
        provider="onedrive",
        owner_id=owner,  # type: ignore[arg-type]
        tokens=tokens,
        name="OneDrive",
        reconnect_id=None,
    )
    return connection.id
