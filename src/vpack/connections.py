"""Stored connections <-> live providers: plain settings in the row, secrets in the vault."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from vpack.db.models import Connection, ConnectionStatus
from vpack.db.session import Database
from vpack.providers.base import BadConfig, Identity, Provider
from vpack.providers.registry import get_provider_class
from vpack.security.vault import KeyFiles, Vault
from vpack.settings import Settings


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
        model = cls.Config.model_validate(self.config_of(connection))
        return cls(model)

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
