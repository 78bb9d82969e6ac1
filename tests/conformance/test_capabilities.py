"""Each harness declares what its emulator can do; the provider's own Features and auth
say what it must be tested for. A provider cannot opt out of a case by leaving a
capability undeclared, nor claim one its Features deny."""

from __future__ import annotations

import pytest

from tests.conformance.conftest import HARNESSES
from tests.conformance.harness import (
    CAPABILITIES,
    CUT_STREAM,
    DEVICE_CLOCK,
    FEED_RESET,
    FILES,
    LOCKOUT,
    RANGED,
    RATE_LIMIT,
    TIME_INDEXED,
    TOKEN_EXPIRY,
    WRONG_HASH,
)
from vpack.providers.base import AuthKind, HashKind, Provider
from vpack.providers.registry import all_providers, get_provider_class


def owed(cls: type[Provider]) -> set[str]:
    """The capabilities the provider's declared nature requires its harness to prove."""
    features, needed = cls.features, set()
    needed.add(TIME_INDEXED if features.time_indexed else FILES)
    if features.ranged_reads:
        needed.add(RANGED)
    if features.hash_kind != HashKind.NONE:
        needed.add(WRONG_HASH)  # a hash it checks: a wrong one must never be published
    if cls.auth != AuthKind.NONE:
        needed.add(CUT_STREAM)  # bytes over a network: a stream that breaks mid-way
    if cls.auth in (AuthKind.OAUTH2, AuthKind.KEYS) and not features.time_indexed:
        needed.add(RATE_LIMIT)  # cloud and object-store APIs throttle
    if cls.auth == AuthKind.OAUTH2:
        needed.add(TOKEN_EXPIRY)
    if cls.auth == AuthKind.DEVICE:
        needed |= {LOCKOUT, DEVICE_CLOCK}  # a password on a box with its own clock
    if not features.full_listing and not features.time_indexed:
        needed.add(FEED_RESET)  # a file store followed through a feed whose tokens die
    return needed


def allowed(cls: type[Provider]) -> set[str]:
    """What a harness may declare: nothing the provider's Features rule out."""
    features = cls.features
    ruled_out = {FILES if features.time_indexed else TIME_INDEXED}
    if not features.ranged_reads:
        ruled_out.add(RANGED)
    if features.hash_kind == HashKind.NONE:
        ruled_out.add(WRONG_HASH)
    if cls.auth != AuthKind.OAUTH2:
        ruled_out.add(TOKEN_EXPIRY)
    if features.full_listing or features.time_indexed:
        ruled_out.add(FEED_RESET)
    return CAPABILITIES - ruled_out


def test_every_provider_has_a_harness() -> None:
    assert set(all_providers()) == set(HARNESSES), "a provider without a conformance harness"


@pytest.mark.parametrize("name", sorted(HARNESSES))
def test_a_harness_declares_what_its_provider_owes_and_no_more(name: str) -> None:
    declared, factory = HARNESSES[name]
    cls = get_provider_class(factory.provider_name)  # type: ignore[attr-defined]
    assert owed(cls) <= declared, f"{name} leaves out {sorted(owed(cls) - declared)}"
    assert declared <= allowed(cls), f"{name} claims {sorted(declared - allowed(cls))}"


def test_the_rules_bite() -> None:
    """A provider that checks a hash, reads ranges and signs in owes those cases."""
    s3 = get_provider_class("s3")
    assert {RANGED, WRONG_HASH, RATE_LIMIT, CUT_STREAM, FILES} <= owed(s3)
    assert TIME_INDEXED not in allowed(s3) and TOKEN_EXPIRY not in allowed(s3)
    assert {LOCKOUT, DEVICE_CLOCK, TIME_INDEXED} <= owed(get_provider_class("hikvision"))
