"""A listing fetched ahead in a thread of its own (providers/pages_ahead.py): pages in
order, each fetched once, at most `ahead` waiting; errors handed over; no page kept
for a scan that does not come."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from vpack.providers import pages_ahead
from vpack.providers.pages_ahead import PagesAhead


class _Listing:
    """A listing of `pages` pages; each fetch is recorded, and may be held or fail."""

    def __init__(self, pages: int, fail_at: int | None = None) -> None:
        self.pages = pages
        self.fail_at = fail_at
        self.asked: list[str | None] = []
        self.gate = threading.Event()
        self.gate.set()

    def fetch(self, prefix: str, token: str | None) -> dict[str, Any]:
        self.gate.wait(10)
        self.asked.append(token)
        number = 0 if token is None else int(token)
        if number == self.fail_at:
            raise ValueError(f"page {number} failed")
        more = number + 1 < self.pages
        return {"page": number, "prefix": prefix, "next": str(number + 1) if more else None}

    @staticmethod
    def next_token(page: dict[str, Any]) -> str | None:
        token: str | None = page["next"]
        return token


def _wait(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline, "not within 5 s"
        time.sleep(0.005)


def test_pages_are_handed_over_in_order_each_fetched_once() -> None:
    listing = _Listing(5)
    ahead = PagesAhead("p/", listing.fetch, listing.next_token, ahead=2)
    _wait(lambda: len(listing.asked) == 3)
    time.sleep(0.05)
    assert len(listing.asked) == 3, "two pages waiting and one held: no more"
    token = None
    for number in range(5):
        page = ahead.take("p/", token)
        assert page is not None and page["page"] == number
        token = page["next"]
    assert ahead.stopped and listing.asked == [None, "1", "2", "3", "4"]


def test_a_page_it_does_not_hold_stops_it() -> None:
    listing = _Listing(5)
    ahead = PagesAhead("p/", listing.fetch, listing.next_token, ahead=1)
    assert ahead.take("other/", None) is None
    assert ahead.stopped
    listing = _Listing(5)
    ahead = PagesAhead("p/", listing.fetch, listing.next_token)
    assert ahead.take("p/", "3") is None, "not the page it lists next"
    assert ahead.take("p/", None) is None, "stopped for good"


def test_what_fetching_a_page_raised_is_raised_by_take() -> None:
    listing = _Listing(5, fail_at=1)
    ahead = PagesAhead("p/", listing.fetch, listing.next_token)
    first = ahead.take("p/", None)
    assert first is not None
    with pytest.raises(ValueError, match="page 1 failed"):
        ahead.take("p/", first["next"])
    assert ahead.stopped


def test_a_listing_nobody_takes_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pages_ahead, "_UNTAKEN_SECONDS", 0.1)
    listing = _Listing(10)
    ahead = PagesAhead("p/", listing.fetch, listing.next_token, ahead=1)
    _wait(lambda: ahead.stopped)
    _wait(lambda: not ahead._thread.is_alive())
    assert len(listing.asked) == 2, "one page waiting, one it gave up handing over"
    assert ahead.take("p/", None) is None


def test_a_take_waits_for_the_page_on_its_way() -> None:
    listing = _Listing(2)
    listing.gate.clear()
    ahead = PagesAhead("p/", listing.fetch, listing.next_token)
    threading.Timer(0.05, listing.gate.set).start()
    page = ahead.take("p/", None)
    assert page is not None and page["page"] == 0
