"""The credential vault: encryption, key loading, the key file and key rotation."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from vpack.db.models import AuditEvent, Connection
from vpack.security import vault as vault_module
from vpack.security.audit import Action
from vpack.security.vault import (
    HEADER_BYTES,
    MAGIC,
    NONCE_BYTES,
    TAG_BYTES,
    Vault,
    VaultError,
    ensure_key_file,
    rotate_keys,
)
from vpack.services import Services, prepare
from vpack.settings import Settings

KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))
# Its standard base64 has '+' and '/', its urlsafe base64 '-' and '_'.
KEY_SYMBOLS = b"\xfb\xff" * 16
PLAINTEXT_MARKER = "hunter2-very-secret-token-Ω"
SECRETS: dict[str, Any] = {"refresh_token": PLAINTEXT_MARKER, "scopes": ["a", "b"], "n": 3}


@pytest.fixture(autouse=True)
def _no_key_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VPACK_SECRET_KEY", raising=False)
    monkeypatch.delenv("VPACK_PREVIOUS_SECRET_KEYS", raising=False)


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def file_settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(data_dir=tmp_path / "data", **overrides)


def write_key_file(settings: Settings, name: str, text: str | bytes) -> Path:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / name
    if isinstance(text, str):
        text = text.encode()
    path.write_bytes(text)
    return path


# --- encryption ---------------------------------------------------------------------------


def test_round_trip() -> None:
    vault = Vault(KEY_A)
    assert vault.decrypt(7, vault.encrypt(7, SECRETS)) == SECRETS
    assert vault.decrypt(8, vault.encrypt(8, {})) == {}


def test_blob_layout_and_fresh_nonces() -> None:
    vault = Vault(KEY_A)
    first, second = vault.encrypt(1, SECRETS), vault.encrypt(1, SECRETS)
    assert first.startswith(MAGIC)
    assert first[len(MAGIC) : HEADER_BYTES].hex() == vault.key_id
    assert vault.key_id == hashlib.sha256(KEY_A).hexdigest()[:16]
    plaintext_size = len(json.dumps(SECRETS, separators=(",", ":"), ensure_ascii=False).encode())
    assert len(first) == HEADER_BYTES + NONCE_BYTES + plaintext_size + TAG_BYTES
    assert first[HEADER_BYTES : HEADER_BYTES + NONCE_BYTES] != second[HEADER_BYTES:][:NONCE_BYTES]
    assert first != second


def test_ciphertext_never_contains_the_plaintext() -> None:
    blob = Vault(KEY_A).encrypt(1, SECRETS)
    for needle in (PLAINTEXT_MARKER.encode(), b"hunter2", b"refresh_token", b"scopes"):
        assert needle not in blob
    assert b"hunter2" not in base64.b64decode(base64.b64encode(blob))
    assert KEY_A not in blob


def test_associated_data_binds_the_blob_to_its_connection() -> None:
    vault = Vault(KEY_A)
    blob = vault.encrypt(1, SECRETS)
    with pytest.raises(VaultError, match=r"connection 2 failed authentication .* another"):
        vault.decrypt(2, blob)
    assert vault.decrypt(1, blob) == SECRETS


def test_unflushed_connection_is_refused() -> None:
    with pytest.raises(TypeError, match="flush"):
        Vault(KEY_A).encrypt(None, SECRETS)  # type: ignore[arg-type]


def test_every_altered_byte_is_detected() -> None:
    vault = Vault(KEY_A, [KEY_B])
    blob = vault.encrypt(5, SECRETS)
    for index in range(len(blob)):
        tampered = bytearray(blob)
        tampered[index] ^= 0x01
        with pytest.raises(VaultError):
            vault.decrypt(5, bytes(tampered))
    for cut in (1, TAG_BYTES, len(blob) - HEADER_BYTES):
        with pytest.raises(VaultError):
            vault.decrypt(5, blob[:-cut])
    with pytest.raises(VaultError, match="altered"):
        vault.decrypt(5, blob[:-1] + bytes([blob[-1] ^ 0x80]))


def test_not_a_vault_blob() -> None:
    with pytest.raises(VaultError, match="not in a vault format"):
        Vault(KEY_A).decrypt(1, b'{"refresh_token": "x"}' * 3)
    with pytest.raises(VaultError, match="not in a vault format"):
        Vault(KEY_A).needs_rotation(b"")


def test_wrong_key_names_the_key_id_it_needs() -> None:
    blob = Vault(KEY_A).encrypt(3, SECRETS)
    wrong = Vault(KEY_B)
    with pytest.raises(VaultError) as raised:
        wrong.decrypt(3, blob)
    message = str(raised.value)
    assert Vault(KEY_A).key_id in message and "not configured" in message
    assert wrong.key_id in message and "VPACK_PREVIOUS_SECRET_KEYS" in message


def test_previous_keys_decrypt_but_do_not_encrypt() -> None:
    old_blob = Vault(KEY_A).encrypt(4, SECRETS)
    vault = Vault(KEY_B, [KEY_A])
    assert vault.decrypt(4, old_blob) == SECRETS
    assert vault.needs_rotation(old_blob)
    new_blob = vault.encrypt(4, SECRETS)
    assert not vault.needs_rotation(new_blob)
    assert new_blob[len(MAGIC) : HEADER_BYTES].hex() == Vault(KEY_B).key_id
    assert vault.key_ids == [Vault(KEY_B).key_id, Vault(KEY_A).key_id]
    assert b64(KEY_A) not in repr(vault) and vault.key_id in repr(vault)


def test_keys_must_be_32_bytes() -> None:
    with pytest.raises(VaultError, match="32 bytes, not 16"):
        Vault(KEY_A[:16])
    with pytest.raises(VaultError, match="32 bytes, not 31"):
        Vault(KEY_A, [KEY_B[:31]])


# --- where keys come from -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        base64.b64encode(KEY_SYMBOLS).decode(),
        base64.urlsafe_b64encode(KEY_SYMBOLS).decode(),
        base64.urlsafe_b64encode(KEY_SYMBOLS).decode().rstrip("="),
        f"  {base64.b64encode(KEY_SYMBOLS).decode()}\n",
    ],
)
def test_environment_key_in_standard_or_urlsafe_base64(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.setenv("VPACK_SECRET_KEY", text)
    vault = Vault.from_settings(file_settings(tmp_path))
    assert vault.key_id == Vault(KEY_SYMBOLS).key_id
    assert not (tmp_path / "data" / "secret.key").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b64(KEY_A[:16]), "decodes to 16 bytes; a vault key must be exactly 32 bytes"),
        (b64(KEY_A + b"x"), "decodes to 33 bytes"),
        ("not base64 at all!", "is not base64"),
        ("ab*d" * 11, "is not base64"),
    ],
)
def test_bad_environment_key_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, expected: str
) -> None:
    monkeypatch.setenv("VPACK_SECRET_KEY", text)
    with pytest.raises(VaultError, match=expected) as raised:
        Vault.from_settings(file_settings(tmp_path))
    assert str(raised.value).startswith("VPACK_SECRET_KEY ")
    assert text.strip() not in str(raised.value)


def test_bad_previous_key_names_its_entry(tmp_path: Path) -> None:
    settings = file_settings(
        tmp_path, secret_key=b64(KEY_A), previous_secret_keys=f"{b64(KEY_B)}, nope!"
    )
    with pytest.raises(VaultError, match="VPACK_PREVIOUS_SECRET_KEYS entry 2 is not base64"):
        Vault.from_settings(settings)


def test_missing_key_file_is_a_clear_error(tmp_path: Path) -> None:
    settings = file_settings(tmp_path)
    with pytest.raises(VaultError, match=r"key file .*secret\.key is missing") as raised:
        Vault.from_settings(settings)
    assert "VPACK_SECRET_KEY is not set" in str(raised.value)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b64(KEY_A[:16]) + "\n", "decodes to 16 bytes"),
        ("", "decodes to 0 bytes"),
        ("this is not a key\n", "is not base64"),
        (KEY_A, "is not base64"),  # raw bytes, some not ASCII
        (b"\xff" * 32, "is not base64"),
    ],
)
def test_bad_key_file_is_a_clear_error(tmp_path: Path, content: str | bytes, expected: str) -> None:
    settings = file_settings(tmp_path)
    path = write_key_file(settings, "secret.key", content)
    with pytest.raises(VaultError, match=expected) as raised:
        Vault.from_settings(settings)
    assert str(path) in str(raised.value)


def test_unreadable_key_file_is_a_clear_error(tmp_path: Path) -> None:
    settings = file_settings(tmp_path)
    (settings.data_dir / "secret.key").mkdir(parents=True)
    with pytest.raises(VaultError, match="cannot be read"):
        Vault.from_settings(settings)


def test_key_file_mode_loads_the_retired_key_files(tmp_path: Path) -> None:
    settings = file_settings(tmp_path, previous_secret_keys=b64(KEY_SYMBOLS))
    write_key_file(settings, "secret.key", b64(KEY_A))
    write_key_file(settings, "secret.key.previous", b64(KEY_B))
    vault = Vault.from_settings(settings)
    assert vault.key_id == Vault(KEY_A).key_id
    for key in (KEY_B, KEY_SYMBOLS):
        assert vault.decrypt(1, Vault(key).encrypt(1, SECRETS)) == SECRETS


# --- the key file -------------------------------------------------------------------------------


def test_prepare_creates_the_key_file_0600_and_never_overwrites_it(settings: Settings) -> None:
    path = settings.data_dir / "secret.key"
    previous_umask = os.umask(0)  # a permissive umask must not widen the file's mode
    try:
        prepare(settings)
    finally:
        os.umask(previous_umask)
    assert mode(path) == 0o600
    content = path.read_text()
    assert len(base64.b64decode(content.strip(), validate=True)) == 32
    assert not [p for p in settings.data_dir.iterdir() if p.name.endswith(".tmp")]
    vault = Vault.from_settings(settings)

    prepare(settings)
    assert path.read_text() == content
    assert Vault.from_settings(settings).key_id == vault.key_id

    path.write_text(b64(KEY_B))
    prepare(settings)
    assert path.read_text() == b64(KEY_B)


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o277])
def test_key_file_is_0600_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    previous_umask = os.umask(umask)
    try:
        made = ensure_key_file(file_settings(tmp_path))
    finally:
        os.umask(previous_umask)
    assert made is not None and mode(made) == 0o600


def test_ensure_key_file_reports_what_it_did(tmp_path: Path) -> None:
    settings = file_settings(tmp_path)
    made = ensure_key_file(settings)
    assert made == settings.data_dir / "secret.key" and made.exists()
    assert ensure_key_file(settings) is None


def test_no_key_file_when_the_environment_has_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VPACK_SECRET_KEY", b64(KEY_A))
    settings = file_settings(tmp_path)
    assert ensure_key_file(settings) is None
    assert not (settings.data_dir / "secret.key").exists()
    monkeypatch.setenv("VPACK_SECRET_KEY", "  ")  # blank counts as unset
    assert ensure_key_file(file_settings(tmp_path)) is not None


def test_a_key_file_made_meanwhile_is_not_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = file_settings(tmp_path)
    path = settings.data_dir / "secret.key"
    real_write = vault_module._write_temp_key

    def racing_write(beside: Path, key: bytes) -> Path:
        temp = real_write(beside, key)
        write_key_file(settings, "secret.key", b64(KEY_B))  # another process won the race
        return temp

    monkeypatch.setattr(vault_module, "_write_temp_key", racing_write)
    assert ensure_key_file(settings) is None
    assert path.read_text() == b64(KEY_B)
    assert sorted(p.name for p in settings.data_dir.iterdir()) == ["secret.key"]


# --- rotation -----------------------------------------------------------------------------------


async def seed(services: Services, vault: Vault, count: int = 3) -> dict[int, bytes]:
    """Connections with secrets (and one without): id -> blob."""
    blobs: dict[int, bytes] = {}
    async with services.db.transaction() as session:
        session.add(Connection(provider="local", name="no secrets"))
        for number in range(count):
            connection = Connection(provider="s3", name=f"bucket {number}")
            session.add(connection)
            await session.flush()
            connection.secrets = vault.encrypt(connection.id, secret_for(connection.id))
            blobs[connection.id] = connection.secrets
    return blobs


def secret_for(connection_id: int) -> dict[str, Any]:
    return {"secret_access_key": f"{PLAINTEXT_MARKER}-{connection_id}", "id": connection_id}


async def stored(services: Services) -> dict[int, bytes]:
    async with services.db.session() as session:
        rows = await session.execute(
            select(Connection.id, Connection.secrets).where(Connection.secrets.is_not(None))
        )
        return {connection_id: blob for connection_id, blob in rows if blob is not None}


async def rotation_events(services: Services) -> list[dict[str, Any]]:
    async with services.db.session() as session:
        events = await session.scalars(
            select(AuditEvent).where(AuditEvent.action == Action.KEY_ROTATED.value)
        )
        return [event.detail for event in events]


async def updated_at_by_id(services: Services) -> dict[int, Any]:
    async with services.db.session() as session:
        rows = await session.execute(select(Connection.id, Connection.updated_at))
        return {connection_id: updated_at for connection_id, updated_at in rows}


def key_in_file(path: Path) -> bytes:
    return base64.b64decode(path.read_text().strip())


async def test_rotation_reencrypts_every_row_under_a_new_key(
    services: Services, settings: Settings
) -> None:
    old_vault = Vault.from_settings(settings)
    old_key = key_in_file(settings.data_dir / "secret.key")
    old_blobs = await seed(services, old_vault)
    updated_before = await updated_at_by_id(services)

    result = await rotate_keys(services.db, settings)

    new_key = key_in_file(settings.data_dir / "secret.key")
    new_vault = Vault(new_key)
    assert new_key != old_key
    assert (result.old_key_id, result.new_key_id) == (old_vault.key_id, new_vault.key_id)
    assert result.connections_reencrypted == 3
    assert key_in_file(settings.data_dir / "secret.key.previous") == old_key
    assert mode(settings.data_dir / "secret.key") == 0o600
    assert mode(settings.data_dir / "secret.key.previous") == 0o600
    assert not (settings.data_dir / "secret.key.new").exists()

    rows = await stored(services)
    assert rows.keys() == old_blobs.keys()
    for connection_id, blob in rows.items():
        assert blob != old_blobs[connection_id]
        assert PLAINTEXT_MARKER.encode() not in blob
        assert new_vault.decrypt(connection_id, blob) == secret_for(connection_id)
        with pytest.raises(VaultError, match=new_vault.key_id):
            Vault(old_key).decrypt(connection_id, blob)
        with pytest.raises(VaultError, match=old_vault.key_id):
            new_vault.decrypt(connection_id, old_blobs[connection_id])

    after = Vault.from_settings(settings)
    assert after.key_id == new_vault.key_id
    for connection_id in rows:
        assert not after.needs_rotation(rows[connection_id])
        assert after.decrypt(connection_id, rows[connection_id]) == secret_for(connection_id)
        assert after.decrypt(connection_id, old_blobs[connection_id]) == secret_for(connection_id)

    assert await updated_at_by_id(services) == updated_before  # not an owner's change

    [detail] = await rotation_events(services)
    assert detail == {
        "old_key_id": old_vault.key_id,
        "new_key_id": new_vault.key_id,
        "connections": 3,
    }


async def test_second_rotation_retires_the_first_key(
    services: Services, settings: Settings
) -> None:
    first_key = key_in_file(settings.data_dir / "secret.key")
    await seed(services, Vault(first_key))
    first = await rotate_keys(services.db, settings)
    second = await rotate_keys(services.db, settings)
    assert second.old_key_id == first.new_key_id != second.new_key_id
    assert second.connections_reencrypted == 3
    previous = key_in_file(settings.data_dir / "secret.key.previous")
    assert Vault(previous).key_id == first.new_key_id
    vault = Vault.from_settings(settings)
    assert Vault(first_key).key_id not in vault.key_ids
    for connection_id, blob in (await stored(services)).items():
        assert vault.decrypt(connection_id, blob) == secret_for(connection_id)
    assert len(await rotation_events(services)) == 2


async def test_rotation_with_no_secrets_still_changes_the_key(
    services: Services, settings: Settings
) -> None:
    result = await rotate_keys(services.db, settings)
    assert result.connections_reencrypted == 0
    assert Vault.from_settings(settings).key_id == result.new_key_id != result.old_key_id


async def test_crash_after_commit_loses_nothing_and_rotation_resumes(
    services: Services, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_key = key_in_file(settings.data_dir / "secret.key")
    await seed(services, Vault(old_key))

    def crash(*_: Any) -> None:
        raise RuntimeError("power cut")

    monkeypatch.setattr(vault_module, "_replace_key_file", crash)
    with pytest.raises(RuntimeError):
        await rotate_keys(services.db, settings)
    monkeypatch.undo()

    # Rows are under the new key; secret.key is still the old one.
    pending = settings.data_dir / "secret.key.new"
    assert mode(pending) == 0o600
    new_key_id = Vault(key_in_file(pending)).key_id
    assert key_in_file(settings.data_dir / "secret.key") == old_key
    vault = Vault.from_settings(settings)
    for connection_id, blob in (await stored(services)).items():
        assert vault.needs_rotation(blob)  # not under the key in force yet...
        assert vault.decrypt(connection_id, blob) == secret_for(connection_id)  # ...readable

    result = await rotate_keys(services.db, settings)
    assert result.new_key_id == new_key_id  # finished with the same key
    assert Vault.from_settings(settings).key_id == new_key_id
    assert not pending.exists()


async def test_crash_between_the_renames_loses_nothing(
    services: Services, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(services, Vault.from_settings(settings))

    def crash(*_: Any) -> None:
        raise RuntimeError("power cut")

    monkeypatch.setattr(vault_module, "_install_new_key", crash)
    with pytest.raises(RuntimeError):
        await rotate_keys(services.db, settings)
    monkeypatch.undo()

    vault = Vault.from_settings(settings)
    for connection_id, blob in (await stored(services)).items():
        assert vault.decrypt(connection_id, blob) == secret_for(connection_id)
    result = await rotate_keys(services.db, settings)
    for connection_id, blob in (await stored(services)).items():
        assert Vault(key_in_file(settings.data_dir / "secret.key")).decrypt(
            connection_id, blob
        ) == secret_for(connection_id)
    assert Vault.from_settings(settings).key_id == result.new_key_id


async def test_rotation_is_all_or_nothing(services: Services, settings: Settings) -> None:
    vault = Vault.from_settings(settings)
    blobs = await seed(services, vault)
    async with services.db.transaction() as session:
        stray = Connection(provider="s3", name="sealed with a lost key")
        session.add(stray)
        await session.flush()
        stray.secrets = Vault(KEY_B).encrypt(stray.id, SECRETS)
        blobs[stray.id] = stray.secrets
    key_before = (settings.data_dir / "secret.key").read_text()

    with pytest.raises(VaultError, match=Vault(KEY_B).key_id):
        await rotate_keys(services.db, settings)

    assert await stored(services) == blobs
    assert await rotation_events(services) == []
    assert (settings.data_dir / "secret.key").read_text() == key_before
    assert not (settings.data_dir / "secret.key.previous").exists()


async def test_rotation_with_the_key_in_the_environment(
    services: Services, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def settings_from_environment() -> Settings:
        return Settings(data_dir=settings.data_dir, database_url=settings.database_url)

    for name in ("secret.key", "secret.key.previous", "secret.key.new"):
        (settings.data_dir / name).unlink(missing_ok=True)
    monkeypatch.setenv("VPACK_SECRET_KEY", b64(KEY_A))
    old_settings = settings_from_environment()
    prepare(old_settings)
    assert not (settings.data_dir / "secret.key").exists()
    blobs = await seed(services, Vault.from_settings(old_settings))

    # The key cannot be rewritten from here: refused, with the procedure.
    with pytest.raises(VaultError) as refused:
        await rotate_keys(services.db, old_settings)
    help_text = str(refused.value)
    assert "VPACK_PREVIOUS_SECRET_KEYS" in help_text and "vpack keys rotate" in help_text
    assert await stored(services) == blobs

    # Following it: the new key in force, the old one listed as previous.
    monkeypatch.setenv("VPACK_SECRET_KEY", b64(KEY_B))
    monkeypatch.setenv("VPACK_PREVIOUS_SECRET_KEYS", b64(KEY_A))
    new_settings = settings_from_environment()
    result = await rotate_keys(services.db, new_settings)
    assert (result.old_key_id, result.new_key_id) == (Vault(KEY_A).key_id, Vault(KEY_B).key_id)
    assert result.connections_reencrypted == 3
    assert not [p for p in settings.data_dir.iterdir() if p.name.startswith("secret.key")]

    # Afterwards the old key is no longer needed.
    monkeypatch.delenv("VPACK_PREVIOUS_SECRET_KEYS")
    final = Vault.from_settings(settings_from_environment())
    assert final.key_ids == [Vault(KEY_B).key_id]
    for connection_id, blob in (await stored(services)).items():
        assert final.decrypt(connection_id, blob) == secret_for(connection_id)
        with pytest.raises(VaultError, match=Vault(KEY_A).key_id):
            final.decrypt(connection_id, blobs[connection_id])
    [detail] = await rotation_events(services)
    assert detail["new_key_id"] == Vault(KEY_B).key_id
    assert b64(KEY_A) not in json.dumps(detail) and b64(KEY_B) not in json.dumps(detail)


async def test_environment_rotation_needs_a_new_key(services: Services, settings: Settings) -> None:
    same = settings.model_copy(
        update={"secret_key": b64(KEY_A), "previous_secret_keys": b64(KEY_A)}
    )
    with pytest.raises(VaultError, match="same key"):
        await rotate_keys(services.db, same)


async def test_rotation_reencrypts_a_sinks_secret_too(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    from tests.unit.test_engine import _add
    from vpack.db.models import Sink
    from vpack.handoff.deliverer import vault_id

    source_id = await _add(services, tmp_path / "cam")
    old_vault = Vault.from_settings(settings)
    async with services.db.transaction() as session:
        sink = Sink(source_id=source_id, kind="webhook", name="hook", config={"url": "http://h/"})
        session.add(sink)
        await session.flush()
        sink.secrets = old_vault.encrypt(vault_id(sink.id), {"secret": "sign-with-this-key"})
        sink_id = sink.id
    result = await rotate_keys(services.db, settings)
    async with services.db.session() as session:
        blob = await session.scalar(select(Sink.secrets).where(Sink.id == sink_id))
    assert blob is not None
    new_vault = Vault(key_in_file(settings.data_dir / "secret.key"))
    assert result.new_key_id == new_vault.key_id
    assert new_vault.decrypt(vault_id(sink_id), blob) == {"secret": "sign-with-this-key"}
    with pytest.raises(VaultError):
        new_vault.decrypt(sink_id, blob)  # bound to the sink, not to connection number n
    [detail] = await rotation_events(services)
    assert detail["sinks"] == 1
