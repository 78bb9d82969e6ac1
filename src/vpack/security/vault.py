"""The credential vault: AES-256-GCM encryption of each connection's secrets, and key rotation.

Blob layout, as stored in `connections.secrets`::

    offset  size  field
         0     4  magic and format version, b"VPV1"
         4     8  key id: the first 8 bytes of SHA-256(key), shown as 16 hex digits
        12    12  nonce: random, fresh for every encryption
        24     *  AES-256-GCM ciphertext of the secrets as JSON, then the 16-byte tag

The associated data is the 12-byte header (magic and key id) followed by the connection
id as 8 bytes big-endian, so a blob copied to another connection row does not decrypt.

Keys are 32 bytes, written in base64 (standard or urlsafe). The key in force is
VPACK_SECRET_KEY, or else `<data_dir>/secret.key` (made 0600 by `prepare()`). Retired keys
still accepted for decryption: VPACK_PREVIOUS_SECRET_KEYS (comma-separated) and, in
key-file mode, `secret.key.previous` and `secret.key.new` (see `rotate_keys`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

if TYPE_CHECKING:
    from vpack.db.session import Database
    from vpack.settings import Settings

MAGIC = b"VPV1"
KEY_BYTES = 32
KEY_ID_BYTES = 8
NONCE_BYTES = 12
TAG_BYTES = 16
HEADER_BYTES = len(MAGIC) + KEY_ID_BYTES

KEY_FILE = "secret.key"
PREVIOUS_KEY_FILE = "secret.key.previous"
NEW_KEY_FILE = "secret.key.new"

_MAKE_KEY_HINT = "e.g. `openssl rand -base64 32`"

ENV_ROTATION_HELP = (
    "VPACK_SECRET_KEY is set in the environment, so `vpack keys rotate` cannot replace it. "
    f"To rotate: make a new key ({_MAKE_KEY_HINT}); set VPACK_PREVIOUS_SECRET_KEYS to the "
    "current VPACK_SECRET_KEY value and VPACK_SECRET_KEY to the new key; run "
    "`vpack keys rotate` again to re-encrypt every stored secret under the new key; then "
    "restart the service. VPACK_PREVIOUS_SECRET_KEYS can be removed after that."
)


class VaultError(Exception):
    """A secret cannot be encrypted or decrypted; the message says what to fix."""


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()[:KEY_ID_BYTES]


def decode_key(text: str, source: str) -> bytes:
    """A 32-byte key from base64 (standard or urlsafe, padding optional); `source` names it."""
    compact = "".join(text.split())
    standard = compact.replace("-", "+").replace("_", "/")
    standard += "=" * (-len(standard) % 4)
    try:
        key = base64.b64decode(standard, validate=True)
    except (binascii.Error, ValueError):
        # Never echo the text: it may be most of a real key.
        raise VaultError(
            f"{source} is not base64; it must hold a 32-byte key in base64 ({_MAKE_KEY_HINT})."
        ) from None
    if len(key) != KEY_BYTES:
        raise VaultError(
            f"{source} decodes to {len(key)} bytes; a vault key must be exactly "
            f"{KEY_BYTES} bytes ({_MAKE_KEY_HINT})."
        )
    return key


def _associated_data(header: bytes, connection_id: int) -> bytes:
    if isinstance(connection_id, bool) or not isinstance(connection_id, int):
        raise TypeError("secrets are bound to a connection id: flush the connection first")
    return header + connection_id.to_bytes(8, "big", signed=True)


def _split(blob: bytes) -> tuple[bytes, bytes, bytes]:
    """(key id, nonce, ciphertext with tag) of a blob, or a VaultError if it is not one."""
    if len(blob) < HEADER_BYTES + NONCE_BYTES + TAG_BYTES or not blob.startswith(MAGIC):
        raise VaultError(
            f"Stored secrets are not in a vault format this version reads (expected prefix "
            f"{MAGIC.decode()}): they are corrupt or were written by another program or version."
        )
    return (
        blob[len(MAGIC) : HEADER_BYTES],
        blob[HEADER_BYTES : HEADER_BYTES + NONCE_BYTES],
        blob[HEADER_BYTES + NONCE_BYTES :],
    )


class Vault:
    """Encrypts under the current key; decrypts under it or any previous key."""

    def __init__(self, current: bytes, previous: Sequence[bytes] = ()) -> None:
        for key in (current, *previous):
            if len(key) != KEY_BYTES:
                raise VaultError(f"A vault key must be {KEY_BYTES} bytes, not {len(key)}.")
        self._current_id = _key_id(current)
        self._ciphers = {_key_id(key): AESGCM(key) for key in previous}
        self._ciphers[self._current_id] = AESGCM(current)

    @classmethod
    def from_settings(cls, settings: Settings) -> Vault:
        """The vault configured by VPACK_SECRET_KEY or the key files, with retired keys."""
        retired = _previous_env_keys(settings)
        env_key = _env_key(settings)
        if env_key is not None:
            return cls(decode_key(env_key, "VPACK_SECRET_KEY"), retired)
        current, previous = _load_key_files(KeyFiles.of(settings))
        return cls(current, [*previous, *retired])

    @property
    def key_id(self) -> str:
        """Id of the key new secrets are encrypted under (16 hex digits)."""
        return self._current_id.hex()

    @property
    def key_ids(self) -> list[str]:
        """Ids of every key this vault can decrypt with, current first."""
        return [self.key_id, *(k.hex() for k in self._ciphers if k != self._current_id)]

    def __repr__(self) -> str:
        return f"Vault(key_ids={self.key_ids})"

    def encrypt(self, connection_id: int, secrets: dict[str, Any]) -> bytes:
        header = MAGIC + self._current_id
        nonce = os.urandom(NONCE_BYTES)
        plaintext = json.dumps(secrets, separators=(",", ":"), ensure_ascii=False).encode()
        sealed = self._ciphers[self._current_id].encrypt(
            nonce, plaintext, _associated_data(header, connection_id)
        )
        return header + nonce + sealed

    def decrypt(self, connection_id: int, blob: bytes) -> dict[str, Any]:
        blob = bytes(blob)  # some drivers hand back memoryview
        key_id, nonce, sealed = _split(blob)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise VaultError(
                f"The secrets of connection {connection_id} were encrypted with vault key "
                f"{key_id.hex()}, which is not configured (configured: "
                f"{', '.join(self.key_ids)}). Put that key in VPACK_SECRET_KEY or "
                "VPACK_PREVIOUS_SECRET_KEYS, or restore the key file that held it."
            )
        try:
            plaintext = cipher.decrypt(
                nonce, sealed, _associated_data(blob[:HEADER_BYTES], connection_id)
            )
        except InvalidTag:
            raise VaultError(
                f"The secrets of connection {connection_id} failed authentication under vault "
                f"key {key_id.hex()}: the stored data was altered or belongs to another "
                "connection. Reconnect the account to store its secrets again."
            ) from None
        # Authenticated, so it is the JSON object `encrypt` wrote.
        return cast(dict[str, Any], json.loads(plaintext))

    def needs_rotation(self, blob: bytes) -> bool:
        """Whether the blob is under a key other than the current one."""
        key_id, _, _ = _split(bytes(blob))
        return key_id != self._current_id


def _env_key(settings: Settings) -> str | None:
    # Blank counts as unset: compose files often pass `VPACK_SECRET_KEY=${VPACK_SECRET_KEY}`.
    key = settings.secret_key
    return key if key and key.strip() else None


def _previous_env_keys(settings: Settings) -> list[bytes]:
    entries = [e for e in settings.previous_secret_keys.split(",") if e.strip()]
    return [
        decode_key(entry, f"VPACK_PREVIOUS_SECRET_KEYS entry {number}")
        for number, entry in enumerate(entries, start=1)
    ]


@dataclass(frozen=True)
class KeyFiles:
    """Where key-file mode keeps its keys."""

    current: Path
    previous: Path
    new: Path

    @classmethod
    def of(cls, settings: Settings) -> KeyFiles:
        folder = settings.data_dir
        return cls(folder / KEY_FILE, folder / PREVIOUS_KEY_FILE, folder / NEW_KEY_FILE)


def _read_key_file(path: Path) -> bytes:
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise VaultError(
            f"The vault key file {path} is missing and VPACK_SECRET_KEY is not set. Restore "
            "the file from backup; without it stored credentials cannot be decrypted. "
            "(`vpack init` makes a new key, but then every account must be reconnected.)"
        ) from None
    except UnicodeDecodeError:
        raise VaultError(
            f"The vault key file {path} is not base64; it must hold a 32-byte key in "
            f"base64 ({_MAKE_KEY_HINT})."
        ) from None
    except OSError as error:
        raise VaultError(f"The vault key file {path} cannot be read: {error.strerror}.") from None
    return decode_key(text, f"The vault key file {path}")


def _load_key_files(files: KeyFiles) -> tuple[bytes, list[bytes]]:
    """The key in force and the retired ones a rotation (finished or not) left behind."""
    current = _read_key_file(files.current)
    # secret.key.new holds the rows' key if a rotation stopped after its commit.
    previous = [_read_key_file(path) for path in (files.previous, files.new) if path.exists()]
    return current, previous


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temp_key(beside: Path, key: bytes) -> Path:
    """A durable 0600 file holding the key, next to `beside`, ready to be linked or renamed."""
    temp = beside.with_name(f".{beside.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), 0o600)  # whatever the umask
            file.write(base64.b64encode(key) + b"\n")
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def _create_key_file(path: Path, key: bytes) -> bool:
    """Write a key file unless one exists (then False): never overwritten, never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _write_temp_key(path, key)
    try:
        os.link(temp, path)  # atomic, and fails rather than replace an existing file
    except FileExistsError:
        return False
    finally:
        temp.unlink()
    _fsync_dir(path.parent)
    return True


def _replace_key_file(path: Path, key: bytes) -> None:
    temp = _write_temp_key(path, key)
    os.replace(temp, path)
    _fsync_dir(path.parent)


def ensure_key_file(settings: Settings) -> Path | None:
    """Create `<data_dir>/secret.key` unless VPACK_SECRET_KEY is set or it exists.

    Returns the path when it made the file, so `vpack init` can say to back it up.
    """
    if _env_key(settings) is not None:
        return None
    path = KeyFiles.of(settings).current
    if path.exists():
        return None
    return path if _create_key_file(path, os.urandom(KEY_BYTES)) else None


@dataclass(frozen=True)
class RotationResult:
    old_key_id: str
    new_key_id: str
    connections_reencrypted: int


async def rotate_keys(db: Database, settings: Settings) -> RotationResult:
    """Re-encrypt every stored secret under a new key and put that key in force.

    Key-file mode, each step durable before the next, so every row stays readable
    by the keys `from_settings` loads whenever the process stops:

    1. write the new key to secret.key.new (0600), or reuse the one an interrupted
       rotation left there; from now on it is loaded for decryption;
    2. one transaction re-encrypts every non-null `connections.secrets` under it and
       records the audit event; a failure rolls back to the old rows, still readable;
    3. write the old key to secret.key.previous (replacing the one before it: the
       transaction moved every row off that key);
    4. rename secret.key.new over secret.key, atomically.

    With VPACK_SECRET_KEY set the key cannot be rewritten here: the operator sets the
    new key and lists the old one in VPACK_PREVIOUS_SECRET_KEYS, and this re-encrypts
    every row under the new key (otherwise it refuses, saying so).
    """
    if _env_key(settings) is not None:
        return await _rotate_to_environment_key(db, settings)
    files = KeyFiles.of(settings)
    old_key, retired = _load_key_files(files)
    retired += _previous_env_keys(settings)
    # An existing secret.key.new is a rotation that stopped part-way: finish it.
    _create_key_file(files.new, os.urandom(KEY_BYTES))
    new_key = _read_key_file(files.new)
    old_key_id = Vault(old_key).key_id
    vault = Vault(new_key, [old_key, *retired])
    count = await _reencrypt_all(db, vault, old_key_id)
    _replace_key_file(files.previous, old_key)
    _install_new_key(files)
    return RotationResult(old_key_id, vault.key_id, count)


def _install_new_key(files: KeyFiles) -> None:
    os.replace(files.new, files.current)
    _fsync_dir(files.current.parent)


async def _rotate_to_environment_key(db: Database, settings: Settings) -> RotationResult:
    retired = _previous_env_keys(settings)
    if not retired:
        raise VaultError(ENV_ROTATION_HELP)
    vault = Vault.from_settings(settings)
    old_key_id = Vault(retired[0]).key_id
    if old_key_id == vault.key_id:
        raise VaultError(
            "VPACK_SECRET_KEY is the same key as the first VPACK_PREVIOUS_SECRET_KEYS entry: "
            f"set VPACK_SECRET_KEY to a new key ({_MAKE_KEY_HINT}) and run it again."
        )
    count = await _reencrypt_all(db, vault, old_key_id)
    return RotationResult(old_key_id, vault.key_id, count)


async def _reencrypt_all(db: Database, vault: Vault, old_key_id: str) -> int:
    """Every stored secret under the vault's current key, all or nothing, audited."""
    # Imported here: the vault's everyday work (encrypt, decrypt) needs no data layer.
    from sqlalchemy import select, update

    from vpack.db.models import Connection, Sink
    from vpack.security.audit import Action, record

    async with db.transaction() as session:
        rows = (
            await session.execute(
                select(Connection.id, Connection.secrets)
                .where(Connection.secrets.is_not(None))
                .order_by(Connection.id)
                .with_for_update()
            )
        ).all()
        for connection_id, blob in rows:
            assert blob is not None
            secrets = vault.decrypt(connection_id, blob)
            await session.execute(
                update(Connection)
                .where(Connection.id == connection_id)
                # A new key is not a change the owner made.
                .values(
                    secrets=vault.encrypt(connection_id, secrets), updated_at=Connection.updated_at
                )
            )
        # Sinks keep their secrets (a webhook's signing key) bound to minus their id.
        sinks = (
            await session.execute(
                select(Sink.id, Sink.secrets)
                .where(Sink.secrets.is_not(None))
                .order_by(Sink.id)
                .with_for_update()
            )
        ).all()
        for sink_id, blob in sinks:
            assert blob is not None
            secrets = vault.decrypt(-sink_id, blob)
            await session.execute(
                update(Sink)
                .where(Sink.id == sink_id)
                .values(secrets=vault.encrypt(-sink_id, secrets))
            )
        counts: dict[str, Any] = {"connections": len(rows)}
        if sinks:
            counts["sinks"] = len(sinks)
        record(
            session,
            Action.KEY_ROTATED,
            target_type="vault",
            old_key_id=old_key_id,
            new_key_id=vault.key_id,
            **counts,
        )
    return len(rows)
