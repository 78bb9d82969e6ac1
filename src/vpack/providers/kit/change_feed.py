"""Walk once, then follow the change feed: the sync of file stores that keep one.

Drive (changes), OneDrive (delta) and Dropbox (list_folder/continue) all give a
token that says "changes after this point". The first scan takes the token
*before* it walks the selection, so whatever changes during the walk is replayed
next time; later scans read the feed page by page from the stored token and
checkpoint after each page (each page's token resumes exactly after it, so a crash
loses no change); a token the store no longer honours means walking again — rows
are idempotent, so nothing is copied twice.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from vpack.providers.base import Checkpoint, ScanEvent

log = logging.getLogger(__name__)


class RoundMemo:
    """Feed pages read once per scan round. A feed that is account- or drive-wide serves
    every selection of a source: each page is asked for once per round, not once per
    selection. Kept for one round only (`clear` from `Provider.begin_scan`), because the
    feed's last page grows."""

    def __init__(self) -> None:
        self._kept: dict[Hashable, Any] = {}

    def clear(self) -> None:
        self._kept.clear()

    async def get(self, key: Hashable, fetch: Callable[[], Awaitable[Any]]) -> Any:
        if key not in self._kept:
            self._kept[key] = await fetch()
        return self._kept[key]


class FeedExpired(Exception):
    """The store no longer honours the stored token (expired, reset, unknown)."""


@dataclass(frozen=True)
class FeedPage:
    changes: list[Any]
    token: str  # where the feed resumes after this page
    caught_up: bool  # the feed's last page for now: the next scan starts at `token`


class FeedState(Protocol):
    """What a provider keeps in the cursor: the token, and whatever else it needs."""

    token: str

    def dump(self) -> str: ...


StateT = TypeVar("StateT", bound=FeedState)


async def walk_then_follow(
    state: StateT | None,
    *,
    begin: Callable[[], Awaitable[StateT]],
    walk: Callable[[StateT], AsyncIterator[ScanEvent]],
    page_from: Callable[[str], Awaitable[FeedPage]],
    apply: Callable[[StateT, Any], AsyncIterator[ScanEvent]],
) -> AsyncIterator[ScanEvent]:
    """One scan. `state` is the stored cursor read back (None: never scanned, or
    unreadable); `begin` takes a fresh token into a new state; `walk` lists the
    selection; `page_from(token)` reads one feed page (raising FeedExpired for a dead
    token); `apply` turns one change into events, updating the state."""
    if state is not None:
        try:
            async for event in follow(state, page_from, apply):
                yield event
            return
        except FeedExpired as exc:
            log.warning("the change feed refused its token (%s): listing the selection again", exc)
    fresh = await begin()
    async for event in walk(fresh):
        yield event
    yield Checkpoint(cursor=fresh.dump())


async def follow(
    state: StateT,
    page_from: Callable[[str], Awaitable[FeedPage]],
    apply: Callable[[StateT, Any], AsyncIterator[ScanEvent]],
) -> AsyncIterator[ScanEvent]:
    """The feed from `state.token` to its last page for now, a Checkpoint after each.

    Also a `walk` for stores whose first listing is the feed itself (OneDrive's delta
    from no token enumerates the whole drive, page by page, ending in a live token)."""
    while True:
        page = await page_from(state.token)
        for change in page.changes:
            async for event in apply(state, change):
                yield event
        state.token = page.token
        yield Checkpoint(cursor=state.dump())
        if page.caught_up:
            return
