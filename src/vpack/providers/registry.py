"""Provider name -> class, so the engine, API and CLI never import a provider by hand."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from vpack.providers.base import BadConfig, Provider

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


def _load_builtin() -> None:
    # Imported for their @register side effect; kept here so adding a provider
    # is one module plus one line.
    from vpack.providers import google_drive, hikvision, local, s3  # noqa: F401


def all_providers() -> dict[str, type[Provider]]:
    _load_builtin()
    return dict(sorted(_PROVIDERS.items()))


def get_provider_class(name: str) -> type[Provider]:
    providers = all_providers()
    try:
        return providers[name]
    except KeyError:
        known = ", ".join(providers) or "none"
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
