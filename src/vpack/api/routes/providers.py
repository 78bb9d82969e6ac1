"""What kinds of source exist, and the form each one needs."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter

from vpack.api.deps import CurrentUser, ServicesDep
from vpack.api.schemas import ProviderOut
from vpack.providers.base import Provider
from vpack.providers.errors import BadConfig
from vpack.providers.registry import all_providers
from vpack.settings import Settings
from vpack.sync.filters import SourceFilters

router = APIRouter(prefix="/api/providers", tags=["providers"])


def _connection_form(cls: type[Provider], settings: Settings) -> dict[str, Any]:
    """The connection schema without the fields the server imposes (a user's value is ignored)."""
    schema = cls.Config.model_json_schema()
    try:
        imposed = set(cls.server_config(settings))
    except BadConfig:
        return schema  # not allowed here: creating one answers with the operator's reason
    if not imposed:
        return schema
    schema["properties"] = {
        k: v for k, v in schema.get("properties", {}).items() if k not in imposed
    }
    if "required" in schema:
        schema["required"] = [k for k in schema["required"] if k not in imposed]
    return schema


@router.get("", response_model=list[ProviderOut])
async def list_providers(user: CurrentUser, services: ServicesDep) -> list[ProviderOut]:
    """Each provider with its auth kind, features and the JSON schema of its forms.

    Secret fields carry `"format": "password", "writeOnly": true` in the schema;
    fields the server sets itself (e.g. which local folders are allowed) are left out.
    """
    return [
        ProviderOut(
            name=cls.name,
            label=cls.label,
            description=cls.description,
            auth=cls.auth.value,
            config_schema=_connection_form(cls, services.settings),
            source_options_schema=cls.SourceOptions.model_json_schema(),
            filters_schema=SourceFilters.model_json_schema(),
            features={
                k: (v.value if hasattr(v, "value") else v)
                for k, v in dataclasses.asdict(cls.features).items()
            },
        )
        for cls in all_providers().values()
    ]
