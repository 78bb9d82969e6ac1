"""The S3 provider against a moto server that checks signatures and IAM policies."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from tests.providers.s3.harness import AccessKey, AuthMoto, boto3_reads
from vpack import catalog
from vpack.db.models import Connection, ConnectionStatus, Source, SourceStatus
from vpack.providers.base import Found
from vpack.providers.errors import BadConfig, ProviderError
from vpack.providers.registry import build_provider
from vpack.providers.s3.provider import S3Provider, S3SourceOptions
from vpack.services import Services


async def _check_fails(config: dict[str, Any]) -> ProviderError:
    provider = build_provider("s3", config)
    try:
        with pytest.raises(BadConfig) as caught:
            await provider.check()
    finally:
        await provider.aclose()
    assert config["secret_access_key"] not in str(caught.value)
    return caught.value


async def test_a_least_privilege_key_connects_lists_and_reads(locked: AuthMoto) -> None:
    provider = build_provider("s3", locked.config(locked.reader))
    assert isinstance(provider, S3Provider)
    try:
        identity = await provider.check()
        assert identity.details["bucket"] == locked.bucket
        events = [e async for e in provider.scan("footage/", None, S3SourceOptions())]
        (video,) = [e.video for e in events if isinstance(e, Found)]
        assert b"".join([c async for c in provider.open(video)]) == b"locked clip"
    finally:
        await provider.aclose()


async def test_reads_after_the_first_carry_our_own_signature(locked: AuthMoto) -> None:
    """Past the first read, GETs are signed by s3_sigv4, not boto3: a server that checks
    every signature takes them for keys that need escaping and for ranges. A signature
    it refuses costs one request more, through boto3. (The reads come from a provider
    that did not list, so its first read goes through boto3.)"""
    keys = {
        "signed/Cam 1/clip one.mp4": b"spaces in the key",
        "signed/Kamera-ü/видео~1.mp4": b"unicode in the key",
        "signed/../dots.mp4": b"dots in the key",
        "signed//double.mp4": b"a double slash",
    }
    admin = locked.client(locked.admin)
    for key, data in keys.items():
        await asyncio.to_thread(admin.put_object, Bucket=locked.bucket, Key=key, Body=data)
    provider = build_provider("s3", locked.config(locked.reader))
    lister = build_provider("s3", locked.config(locked.reader))
    assert isinstance(provider, S3Provider)
    try:
        boto3_gets = await boto3_reads(provider)
        events = [e async for e in lister.scan("signed/", None, S3SourceOptions())]
        videos = [e.video for e in events if isinstance(e, Found)]
        assert sorted(v.remote_id for v in videos) == sorted(keys)
        for video in videos:
            data = keys[video.remote_id]
            assert b"".join([c async for c in provider.open(video)]) == data
            assert b"".join([c async for c in provider.open(video, offset=3)]) == data[3:]
        assert len(boto3_gets) == 1, "only the first read went through boto3"

        assert provider._direct is not None and provider._direct._signer is not None
        provider._direct._signer.region = "eu-north-1"  # a scope the server will refuse
        first = videos[0]
        assert b"".join([c async for c in provider.open(first)]) == keys[first.remote_id]
        assert boto3_gets[1:] == [first.remote_id], "refused, then read through boto3"
    finally:
        await lister.aclose()
        await provider.aclose()


async def test_a_wrong_secret_is_named(locked: AuthMoto) -> None:
    error = await _check_fails(locked.config(AccessKey(locked.reader.key_id, "wrong-secret")))
    assert "secret access key does not belong" in str(error)


async def test_an_unknown_key_id_is_named(locked: AuthMoto) -> None:
    error = await _check_fails(locked.config(AccessKey("AKIANOSUCHKEY0000000", "whatever")))
    assert "does not know the access key id AKIANOSUCHKEY0000000" in str(error)


async def test_a_key_without_rights_to_the_bucket_says_what_it_needs(locked: AuthMoto) -> None:
    error = await _check_fails(locked.config(locked.reader, bucket=locked.other_bucket))
    assert "access denied" in str(error) and "s3:ListBucket" in str(error)


async def test_a_key_revoked_after_connecting_asks_the_user_to_reconnect(
    services: Services, locked: AuthMoto
) -> None:
    iam = locked.iam()
    made = await asyncio.to_thread(iam.create_access_key, UserName="reader")
    key = AccessKey(made["AccessKey"]["AccessKeyId"], made["AccessKey"]["SecretAccessKey"])
    try:
        connection, _ = await services.connections.create(
            provider="s3", name="locked", config=locked.config(key), owner_id=None, from_api=False
        )
        source_id = await catalog.add_source(
            services.db,
            services.connections,
            connection_id=connection.id,
            name="locked source",
            selections=["footage/"],
            options={},
            interval_s=60,
        )
    finally:
        # Revoked here however the set-up went: IAM allows a user two keys, and the
        # server is shared by the session (a key left behind broke the next run's).
        await asyncio.to_thread(iam.delete_access_key, UserName="reader", AccessKeyId=key.key_id)
    report = await services.engine.sync([source_id])
    assert not report.ok
    async with services.db.session() as session:
        stored = await session.get(Connection, connection.id)
        source = (await session.execute(select(Source))).scalar_one()
    assert stored is not None and stored.status == ConnectionStatus.REAUTH_REQUIRED
    assert stored.status_detail and key.key_id in stored.status_detail
    assert source.status == SourceStatus.PAUSED
