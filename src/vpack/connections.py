"""Stored connections <-> live providers: plain settings in the row, secrets in the vault."""

from __future__ import annotations

import asyncio
import types
import typing
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, SecretStr, ValidationError
from sqlalchemy import select

from vpack.db.models import Connection, ConnectionStatus
from vpack.db.session import Database
from vpack.providers.base import AuthKind, Identity, Provider
from vpack.providers.errors import AuthExpired, BadConfig
from vpack.providers.registry import build_provider, get_provider_class
from vpack.security.destinations import check_destination
from vpack.security.vault import KeyFiles, Vault
from vpack.settings import Settings

if TYPE_CHECKING:
    from vpack.providers.kit.oauth import TokenSet

OAUTH_TOKENS_KEY = "oauth"  # the vault key under which an OAuth connection keeps its tokens


def secret_fields(model: type[BaseModel]) -> set[str]:
    """Fields typed SecretStr (or SecretStr | None): these go to the vault, never the row."""
    names = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        args = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else ()
        if annotation is SecretStr or SecretStr in args:
            names.add(name)
    return names


def split_config(
    cls: type[Provider], config: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Validate a connection form; return (plain settings, secret values)."""
    try:
        model = cls.Config.model_validate(config)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ())) or "config"
        raise BadConfig(f"invalid {cls.label} settings: {where}: {err.get('msg')}") from None
    secrets = secret_fields(cls.Config)
    plain = model.model_dump(mode="json", exclude=secrets)
    hidden = {}
    for name in secrets:
        value = getattr(model, name)
        if value is not None:
            hidden[name] = value.get_secret_value()
    return plain, hidden


class ConnectionManager:
    """Builds providers for stored connections and stores new ones."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._vault: Vault | None = None
        self._vault_stamp: tuple[float, ...] | None = None

    def _key_files_stamp(self) -> tuple[float, ...]:
        files = KeyFiles.of(self.settings)
        return tuple(
            p.stat().st_mtime if p.exists() else -1.0
            for p in (files.current, files.previous, files.new)
        )

    @property
    def vault(self) -> Vault:
        """The vault, reloaded whenever `vpack keys rotate` changed the key files.

        A long-running service must never encrypt under a key a rotation retired.
        Loaded on first use: local folders never need a key at all.
        """
        stamp = self._key_files_stamp()
        if self._vault is None or stamp != self._vault_stamp:
            self._vault = Vault.from_settings(self.settings)
            self._vault_stamp = stamp
        return self._vault

    def config_of(self, connection: Connection) -> dict[str, Any]:
        """The provider config with its secrets, decrypted for this use only."""
        config = dict(connection.config)
        if connection.secrets:
            config.update(self.vault.decrypt(connection.id, connection.secrets))
        return config

    def build(self, connection: Connection) -> Provider:
        cls = get_provider_class(connection.provider)
        config = self.config_of(connection)
        if cls.auth != AuthKind.OAUTH2:
            return build_provider(connection.provider, config)
        stored = config.pop(OAUTH_TOKENS_KEY, None)
        if not stored:
            raise AuthExpired(f"{cls.label} is not signed in: reconnect it")
        connection_id = connection.id
        # Only cloud accounts need the OAuth and HTTP stack: other commands skip its imports.
        from vpack.providers.kit.oauth import TokenSet

        async def save(tokens: TokenSet) -> None:
            # Rotating refresh tokens (Microsoft) die on first use: keep the new one now.
            await self.save_secrets(connection_id, {OAUTH_TOKENS_KEY: tokens.to_dict()})

        return self._oauth_provider(cls, config, TokenSet.from_dict(stored), save)

    def _oauth_provider(
        self,
        cls: type[Provider],
        config: dict[str, Any],
        tokens: TokenSet,
        save: Callable[[TokenSet], Awaitable[None]],
    ) -> Provider:
        if cls.oauth is None:
            raise BadConfig(f"{cls.label} declares OAuth2 but no OAuth endpoints")
        from vpack.providers.kit.http import new_client
        from vpack.providers.kit.oauth import TokenManager, spec_from_env

        spec = spec_from_env(cls.name, cls.oauth, self.settings)
        http = new_client()
        manager = TokenManager(spec, tokens, http, save)
        return cls(cls.Config.model_validate(config), tokens=manager, http=http)

    async def connect_oauth(
        self,
        *,
        provider: str,
        owner_id: int,
        tokens: TokenSet,
        name: str | None,
        reconnect_id: int | None,
    ) -> tuple[Connection, Identity, bool]:
        """Store what an OAuth callback brought: a new connection, or fresh tokens for the
        same account (its sources and history stay). Returns (connection, identity, created)."""
        cls = get_provider_class(provider)
        latest = [tokens]

        async def remember(new: TokenSet) -> None:  # not stored yet: keep the newest
            latest[0] = new

        live = self._oauth_provider(cls, {}, tokens, remember)
        try:
            identity = await live.check()
        finally:
            await live.aclose()
        async with self.db.transaction() as session:
            query = select(Connection).where(
                Connection.owner_id == owner_id, Connection.provider == provider
            )
            if reconnect_id is not None:
                query = query.where(Connection.id == reconnect_id)
            else:
                query = query.where(Connection.account == identity.label)
            connection = (await session.execute(query.limit(1))).scalar_one_or_none()
            created = connection is None
            if connection is None:
                connection = Connection(
                    owner_id=owner_id,
                    provider=provider,
                    config={},
                    name=(name or "").strip() or f"{cls.label} ({identity.label})",
                )
                session.add(connection)
                await session.flush()
            connection.account = identity.label
            connection.status = ConnectionStatus.OK
            connection.status_detail = None
            connection.secrets = self.vault.encrypt(
                connection.id, {OAUTH_TOKENS_KEY: latest[0].to_dict()}
            )
        return connection, identity, created

    async def create(
        self,
        *,
        provider: str,
        name: str,
        config: dict[str, Any],
        owner_id: int | None,
        from_api: bool,
    ) -> tuple[Connection, Identity]:
        """Check the settings with the provider, then store them (secrets encrypted)."""
        cls = get_provider_class(provider)
        if from_api:
            config = {**config, **cls.server_config(self.settings)}
        plain, hidden = split_config(cls, config)
        live = cls(cls.Config.model_validate({**plain, **hidden}))
        try:
            if from_api:  # before any request: the check itself must not reach there
                for host in live.destinations():
                    await asyncio.to_thread(check_destination, host, self.settings.blocked)
            identity = await live.check()
        finally:
            await live.aclose()
        async with self.db.transaction() as session:
            connection = Connection(
                owner_id=owner_id,
                provider=provider,
                name=name.strip() or cls.label,
                config=plain,
                account=identity.label,
                status=ConnectionStatus.OK,
            )
            session.add(connection)
            await session.flush()  # the id is the vault's associated data
            if hidden:
                connection.secrets = self.vault.encrypt(connection.id, hidden)
        return connection, identity

    async def save_secrets(self, connection_id: int, secrets: dict[str, Any]) -> None:
        """Replace a connection's secrets at once (rotated OAuth refresh tokens)."""
        async with self.db.transaction() as session:
            connection = await session.get(Connection, connection_id)
            if connection is None:
                raise LookupError(f"no connection with id {connection_id}")
            connection.secrets = self.vault.encrypt(connection_id, secrets)
