"""The contract's cases for every provider, whatever it holds: connecting and browsing."""

from __future__ import annotations

import pytest

from tests.conformance.harness import Harness
from vpack.providers.errors import AuthExpired, BadConfig, Permanent, ProviderError


# ---------------------------------------------------------------- connection
async def test_check_names_what_it_reaches(harness: Harness) -> None:
    provider = harness.build()
    identity = await provider.check()
    await provider.aclose()
    assert identity.id and identity.label


async def test_bad_credentials_give_a_clear_error(harness: Harness) -> None:
    provider = harness.build(harness.bad_connection_config())
    with pytest.raises(ProviderError) as caught:
        await provider.check()
    await provider.aclose()
    message = str(caught.value)
    assert len(message) > 10 and "Traceback" not in message
    # Refused OAuth grants are AuthExpired: the connection then asks for reauth.
    assert isinstance(caught.value, BadConfig | Permanent | AuthExpired)


# ---------------------------------------------------------------- browse
async def test_browse_lists_child_folders(harness: Harness) -> None:
    parent = await harness.add_folders(None, ["Cam1", "Cam2"])
    provider = harness.build()
    page = await provider.browse(parent)
    await provider.aclose()
    assert {n.name for n in page.nodes} >= {"Cam1", "Cam2"}
    assert all(n.id for n in page.nodes)


async def test_browse_pages_through_big_folders(harness: Harness) -> None:
    provider = harness.build()
    count = provider.features.page_size * 2 + 7
    names = [f"folder-{i:05d}" for i in range(count)]
    parent = await harness.add_folders(None, names)
    seen: list[str] = []
    page_token: str | None = None
    pages = 0
    while True:
        page = await provider.browse(parent, page_token)
        pages += 1
        assert len(page.nodes) <= provider.features.page_size
        seen.extend(n.name for n in page.nodes)
        page_token = page.next_page
        if page_token is None:
            break
    await provider.aclose()
    assert pages >= 3
    assert sorted(seen) == names, "every child exactly once across pages"
