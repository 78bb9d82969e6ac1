"""A paged listing fetched in a thread of its own, ahead of the scan that will read it.

A `vpack sync` starts its first source's listing before the program has finished
loading (vpack.head_start); the scan, once it runs, takes the pages already fetched
instead of asking again. At most `ahead` pages wait to be taken, so a listing of a
million keys is not held in memory for a scan that reads it slowly.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

_UNTAKEN_SECONDS = 60.0

# (token the page was asked for with, the page, or what fetching it raised)
_Item = tuple[str | None, dict[str, Any] | None, BaseException | None]


class PagesAhead:
    """The pages of one listing, in order, fetched by `fetch(prefix, token)`; each
    page names the next one's token through `next_token(page)` (None: the last)."""

    def __init__(
        self,
        prefix: str,
        fetch: Callable[[str, str | None], dict[str, Any]],
        next_token: Callable[[dict[str, Any]], str | None],
        ahead: int = 3,
    ) -> None:
        self.prefix = prefix
        self._fetch = fetch
        self._next_token = next_token
        self._pages: queue.Queue[_Item] = queue.Queue(maxsize=ahead)
        self._expected: str | None = None  # the token of the page to be taken next
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._list, name="pages-ahead", daemon=True)
        self._thread.start()

    def _list(self) -> None:
        token: str | None = None
        while not self._stopped.is_set():
            try:
                page = self._fetch(self.prefix, token)
            except BaseException as error:  # handed to the scan, which reports it
                self._put((token, None, error))
                return
            self._put((token, page, None))
            token = self._next_token(page)
            if not token:
                return

    def _put(self, item: _Item) -> None:
        # A listing nobody takes (its scan failed first, or will not come) ends.
        deadline = time.monotonic() + _UNTAKEN_SECONDS
        while not self._stopped.is_set():
            try:
                self._pages.put(item, timeout=0.5)
            except queue.Full:
                if time.monotonic() > deadline:
                    self.stop()
                continue
            return

    def take(self, prefix: str, token: str | None) -> dict[str, Any] | None:
        """The page asked for with (prefix, token), waiting for it if it is on its
        way; None if this listing does not hold it (the caller then lists as usual,
        and the listing ahead stops). Raises what fetching that page raised."""
        with self._lock:
            if self._stopped.is_set() or prefix != self.prefix or token != self._expected:
                self.stop()
                return None
            item = self._next_item()
            if item is None:
                return None
            _, page, error = item
            if error is not None or page is None:
                self.stop()
                raise error or RuntimeError("a listing page went missing")
            self._expected = self._next_token(page)
            if not self._expected:
                self.stop()  # the whole listing has been taken
            return page

    def _next_item(self) -> _Item | None:
        while True:
            try:
                return self._pages.get(timeout=0.5)
            except queue.Empty:
                if not self._thread.is_alive() and self._pages.empty():
                    self.stop()
                    return None

    def stop(self) -> None:
        """Fetch no more pages (one already asked for still completes)."""
        self._stopped.set()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()
