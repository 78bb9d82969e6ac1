"""Fixtures shared by the S3 provider's tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.providers.s3.harness import AuthMoto, S3Harness, auth_moto


@pytest.fixture
async def s3(tmp_path: Path) -> AsyncIterator[S3Harness]:
    """A fresh bucket on the session's moto, behind the fault proxy."""
    harness = await asyncio.to_thread(S3Harness, tmp_path)
    try:
        yield harness
    finally:
        await harness.aclose()


@pytest.fixture
async def locked() -> AuthMoto:
    """The moto that checks signatures and IAM policies (started once per session)."""
    return await asyncio.to_thread(auth_moto)
