"""Pages of a list held in memory, the token being where the next page starts."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeVar

from vpack.providers.errors import BadRequest

T = TypeVar("T")

# Nine digits: far past any folder's size, and an int on every database and client.
_OFFSET = re.compile(r"\d{1,9}", re.ASCII)


def page_of(items: Sequence[T], page: str | None, size: int) -> tuple[Sequence[T], str | None]:
    """The page of `items` that `page` (None: the first) starts, and the next page's token."""
    if page is None:
        start = 0
    elif _OFFSET.fullmatch(page):
        start = int(page)
    else:
        raise BadRequest(f"{page!r} is not a page token this list gave")
    end = start + size
    return items[start:end], str(end) if end < len(items) else None
