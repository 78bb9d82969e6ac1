"""What kinds of source exist, and the form each one needs."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter

from vpack.api.deps import CurrentUser
from vpack.api.schemas import ProviderOut
from vpack.providers.registry import all_providers

router = APIRouter(prefix="/api/providers", tags=["providers"])


@router.get("", response_model=list[ProviderOut])
async def list_providers(user: CurrentUser) -> list[ProviderOut]:
    """Each provider with its auth kind, features and the JSON schema of its forms.

    Secret fields carry `"format": "password", "writeOnly": true` in the schema.
    """
    return [
        ProviderOut(
            name=cls.name,
            label=cls.label,
            description=cls.description,
            auth=cls.auth.value,
            config_schema=cls.Config.model_json_schema(),
            source_options_schema=cls.SourceOptions.model_json_schema(),
            features={
                k: (v.value if hasattr(v, "value") else v)
                for k, v in dataclasses.asdict(cls.features).items()
            },
        )
        for cls in all_providers().values()
    ]
