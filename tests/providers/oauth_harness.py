"""What the harnesses of OAuth cloud stores (Drive, OneDrive, Dropbox) share: the
operator's settings pointing at the emulator, providers built on the harness's tokens,
connections stored as the OAuth callback stores them, the emulators' common knobs."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import secrets
from abc import abstractmethod
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.conformance.harness import Harness
from vpack import catalog
from vpack.connections import ConnectionManager
from vpack.providers.base import Provider
from vpack.providers.kit.oauth import OAuthSpec, TokenManager, TokenSet
from vpack.services import Services


def sign_in(
    http: httpx.Client,
    authorize_url: str,
    token_url: str,
    *,
    client_id: str,
    redirect_uri: str,
    scope: str,
    secret: str | None = None,
    **authorize_params: str,
) -> TokenSet:
    """The authorization-code flow with PKCE, as a browser (on an emulator that approves
    at once) and our callback would run it."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    back = http.get(
        authorize_url,
        params={
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": scope,
            "state": "harness",
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
            **authorize_params,
        },
    )
    code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": client_id,
        "code_verifier": verifier,
    }
    if secret is not None:
        form["client_secret"] = secret
    answer = http.post(token_url, data=form)
    answer.raise_for_status()
    return TokenSet.from_response(answer.json())


class OAuthHarness(Harness):
    provider_class: ClassVar[type[Provider]]
    label: ClassVar[str]  # names the connection and the source
    emulator: Any  # expire_access_tokens, cut_next_download, corrupt_next_download, stop
    tokens: TokenSet

    def use_env(self, env: dict[str, str]) -> None:
        """Set the operator's environment for this harness (undone by aclose)."""
        self.env = env
        self._saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)

    @abstractmethod
    def oauth_spec(self) -> OAuthSpec:
        """The client as the provider's defaults and the emulator's URLs make it."""

    def http_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient()

    async def keep_tokens(self, new: TokenSet) -> None:
        self.tokens = new  # a rotated refresh token: the old one may be dead already

    # ------------------------------------------------------------ connection
    def connection_config(self) -> dict[str, Any]:
        return {}

    def bad_connection_config(self) -> dict[str, Any]:
        return {"tokens": "revoked"}

    def build(self, config: dict[str, Any] | None = None) -> Provider:
        tokens = self.tokens
        if config == self.bad_connection_config():
            tokens = TokenSet(access_token="not-issued", refresh_token="not-issued-either")
        http = self.http_client()
        manager = TokenManager(self.oauth_spec(), tokens, http, self.keep_tokens)
        return self.provider_class(self.provider_class.Config(), tokens=manager, http=http)

    async def add_source(self, services: Services, **options: Any) -> int:
        """Stored as the OAuth callback stores it: tokens in the vault, checked first."""
        connection = await connect(services.connections, self.provider_name, self.tokens)
        return await catalog.add_source(
            services.db,
            services.connections,
            connection_id=connection,
            name=f"{self.label} source",
            selections=[self.selection()],
            options={**self.source_options(), **options},
            interval_s=60,
        )

    # ------------------------------------------------------------ faults every emulator has
    async def expire_token(self) -> None:
        self.emulator.expire_access_tokens()

    async def cut_next_download(self, after_bytes: int) -> None:
        self.emulator.cut_next_download(after_bytes)

    async def corrupt_next_download(self) -> None:
        self.emulator.corrupt_next_download()

    async def aclose(self) -> None:
        for key, value in getattr(self, "_saved", {}).items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        await asyncio.to_thread(self.emulator.stop)


async def connect(
    connections: ConnectionManager, provider: str, tokens: TokenSet, owner: int | None = None
) -> int:
    connection, _, _ = await connections.connect_oauth(
        provider=provider,
        owner_id=owner,  # type: ignore[arg-type]
        tokens=tokens,
        name=provider,
        reconnect_id=None,
    )
    return connection.id


H = TypeVar("H", bound=Harness)


@asynccontextmanager
async def running(factory: type[H], base: Path) -> AsyncIterator[H]:
    """A harness for one test, its emulator stopped afterwards (for fixtures)."""
    made = factory(base)  # type: ignore[call-arg]
    try:
        yield made
    finally:
        await made.aclose()
