"""Provider name -> class, so the engine, API and CLI never import a provider by hand."""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import ValidationError

from vpack.providers.base import Provider
from vpack.providers.errors import BadConfig

_PROVIDERS: dict[str, type[Provider]] = {}


def register(cls: type[Provider]) -> type[Provider]:
    """Class decorator: make a provider known under its `name`."""
    if cls.name in _PROVIDERS and _PROVIDERS[cls.name] is not cls:
        raise ValueError(f"provider name {cls.name!r} registered twice")
    _PROVIDERS[cls.name] = cls
    return cls


def unregister(name: str) -> None:
    """Forget a provider (tests register throwaway ones)."""
    _PROVIDERS.pop(name, None)


# Built-in providers by name, imported (for their @register side effect) when first
# asked for: a command that syncs S3 need not import the HTTP and OAuth stack of the
# others. Adding a provider is one module plus one line.
_BUILTIN = {
    "dahua": "vpack.providers.dahua.provider",
    "google_drive": "vpack.providers.google_drive.provider",
    "hikvision": "vpack.providers.hikvision.provider",
    "local": "vpack.providers.local.provider",
    "dropbox": "vpack.providers.dropbox.provider",
    "onedrive": "vpack.providers.onedrive.provider",
    "s3": "vpack.providers.s3.provider",
}


def all_providers() -> dict[str, type[Provider]]:
    for module in _BUILTIN.values():
        importlib.import_module(module)
    return dict(sorted(_PROVIDERS.items()))


def get_provider_class(name: str) -> type[Provider]:
    if name not in _PROVIDERS and name in _BUILTIN:
        importlib.import_module(_BUILTIN[name])
    try:
        return _PROVIDERS[name]
    except KeyError:
        known = ", ".join(all_providers()) or "none"
        raise BadConfig(f"unknown provider {name!r} (known: {known})") from None


def build_provider(name: str, config: dict[str, Any]) -> Provider:
    """A ready provider instance from stored (already decrypted) config."""
    cls = get_provider_class(name)
    try:
        model = cls.Config.model_validate(config)
    except ValidationError as exc:
        raise BadConfig(f"invalid {cls.label} settings: {_first_error(exc)}") from None
    return cls(model)


def source_options(name: str, options: dict[str, Any]) -> Any:
    cls = get_provider_class(name)
    try:
        return cls.SourceOptions.model_validate(options)
    except ValidationError as exc:
        raise BadConfig(f"invalid {cls.label} source options: {_first_error(exc)}") from None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ())) or "value"
    return f"{where}: {err.get('msg', 'invalid')}"
