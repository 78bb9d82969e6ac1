"""values an older version stored that no answer can serve are repaired

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 21:00:00

Before the API refused them at its edge, a JSON column could take a lone UTF-16
surrogate (written as a \\ud800 escape) or a NUL, and a source's filters a first day
such as 0001-01-01. Read back, the first makes every list of its owner fail (no UTF-8
for it) and the second every scan of that source (`year 0 is out of range`). Such
characters become U+FFFD, which shows the user where the text was damaged, and a first
day outside 1970-2199 is dropped: the source then takes every day, as with none set.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same characters the API's edge refuses (vpack.api.edge), written out here: a
# migration must not change when the code it once ran with does.
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
_EARLIEST, _LATEST = date(1970, 1, 1), date(2199, 12, 31)

_JSON_COLUMNS = {
    "connections": ("config",),
    "sources": ("selections", "selection_names", "cameras", "options", "filters"),
    "audit_events": ("detail",),
}


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return _UNSAFE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _first_day_in_range(filters: Any) -> Any:
    if not isinstance(filters, dict) or not isinstance(filters.get("since"), str):
        return filters
    try:
        day = date.fromisoformat(filters["since"])
    except ValueError:
        return filters  # not a day at all: the source's scan already says so
    if _EARLIEST <= day <= _LATEST:
        return filters
    return {k: v for k, v in filters.items() if k != "since"}


def upgrade() -> None:
    bind = op.get_bind()
    for table_name, columns in _JSON_COLUMNS.items():
        table = sa.table(table_name, sa.column("id"), *(sa.column(c, sa.JSON()) for c in columns))
        for row in bind.execute(sa.select(table)).mappings():
            changed = {}
            for column in columns:
                value = _clean(row[column])
                if table_name == "sources" and column == "filters":
                    value = _first_day_in_range(value)
                if value != row[column]:
                    changed[column] = value
            if changed:
                bind.execute(sa.update(table).where(table.c.id == row["id"]).values(**changed))


def downgrade() -> None:
    pass  # the damaged values are not worth bringing back
