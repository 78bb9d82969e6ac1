"""The Dropbox provider against the Dropbox emulator, signed in with PKCE (no secret)."""

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
from tests.providers.dropbox.emulator import DropboxEmulator
from tests.providers.oauth_harness import OAuthHarness
from tests.providers.oauth_harness import sign_in as oauth_sign_in
from vpack.providers.dropbox.provider import DropboxProvider
from vpack.providers.kit.oauth import OAuthSpec, TokenSet, env_name

APP_KEY = "vpack-dropbox-app"
APP_SECRET = "dropbox-app-s3cret"
REDIRECT = "http://testserver/api/cloud/dropbox/oauth/callback"
SCOPES = list(DropboxProvider.oauth.scopes) if DropboxProvider.oauth else []


def emulator_env(dbx: DropboxEmulator, **extra: str) -> dict[str, str]:
    """The operator settings that point the provider at the emulator (one address
    answers every Dropbox host's paths), and the emulator's CA trusted by httpx."""
    return {
        env_name("dropbox", "CLIENT_ID"): APP_KEY,
        env_name("dropbox", "AUTH_URL"): f"{dbx.base_url}/oauth2/authorize",
        env_name("dropbox", "TOKEN_URL"): f"{dbx.base_url}/oauth2/token",
        env_name("dropbox", "API_URL"): dbx.base_url,
        env_name("dropbox", "CONTENT_URL"): dbx.base_url,
        env_name("dropbox", "NOTIFY_URL"): dbx.base_url,
        "SSL_CERT_FILE": str(dbx.ca_file),
        **extra,
    }


def sign_in(dbx: DropboxEmulator, *, offline: bool = True) -> TokenSet:
    """Signed in with PKCE and no app secret, as our callback does."""
    with httpx.Client(verify=dbx.ssl_context()) as http:
        return oauth_sign_in(
            http,
            f"{dbx.base_url}/oauth2/authorize",
            f"{dbx.base_url}/oauth2/token",
            client_id=APP_KEY,
            redirect_uri=REDIRECT,
            scope=" ".join(SCOPES),
            token_access_type="offline" if offline else "online",
        )


class DropboxHarness(OAuthHarness):
    name = "dropbox"
    provider_name = "dropbox"
    provider_class = DropboxProvider
    label = "Dropbox"
    capabilities = frozenset({RANGED, RATE_LIMIT, TOKEN_EXPIRY, CUT_STREAM, WRONG_HASH, FEED_RESET})
    team = False

    def __init__(self, base: Path) -> None:
        self.dbx = self.emulator = DropboxEmulator(
            app_key=APP_KEY, app_secret=APP_SECRET, redirect_uris=[REDIRECT], team=self.team
        ).start()
        self.use_env(emulator_env(self.dbx))
        self.area = self.dbx.add_folder("/Project/Area")
        self.tokens = sign_in(self.dbx)

    def selection(self) -> str:
        return f"home/{self.area}"

    def oauth_spec(self) -> OAuthSpec:
        return OAuthSpec(
            provider=self.provider_name,
            authorize_url=f"{self.dbx.base_url}/oauth2/authorize",
            token_url=f"{self.dbx.base_url}/oauth2/token",
            client_id=APP_KEY,
            redirect_uri=REDIRECT,
            scopes=SCOPES,
        )

    def http_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(verify=self.dbx.ssl_context())

    # ------------------------------------------------------------ content
    def path(self, camera: str, name: str) -> str:
        return f"/Project/Area/{camera}/{name}"

    async def add_video(self, camera: str, name: str, data: bytes) -> None:
        await asyncio.to_thread(self.dbx.add_file, self.path(camera, name), data)

    async def remove_video(self, camera: str, name: str) -> None:
        await asyncio.to_thread(self.dbx.delete, self.path(camera, name))

    async def add_folders(self, parent: str | None, names: list[str]) -> str:
        assert parent is None, "the contract adds folders under the selection"
        for name in names:
            self.dbx.add_folder(f"/Project/Area/{name}")
        return self.selection()

    # ------------------------------------------------------------ faults
    async def rate_limit_next(self, requests: int, retry_after: float) -> None:
        self.dbx.rate_limit_next(requests, retry_after=int(retry_after))

    async def forget_feed_tokens(self) -> None:
        self.dbx.reset_cursors()
