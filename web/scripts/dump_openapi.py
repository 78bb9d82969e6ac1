"""Write the API's OpenAPI schema to web/openapi.json, the source of the UI's typed client.

Run through `make api-client` (which also regenerates web/src/api/schema.d.ts);
tests/api/test_web.py fails when the committed file no longer matches the app.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from vpack.api.app import create_app
from vpack.settings import Settings

OUT = Path(__file__).resolve().parents[1] / "openapi.json"


def current_schema() -> dict[str, Any]:
    """The schema exactly as the running service serves it at /api/openapi.json."""
    with tempfile.TemporaryDirectory() as scratch:  # nothing is created: the app is not started
        app = create_app(Settings(data_dir=Path(scratch)), run_worker=False)
        return app.openapi()


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    OUT.write_text(render(current_schema()), encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
