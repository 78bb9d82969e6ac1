"""The few typed errors every provider raises, and the engine's retry policy reads.

Imports nothing, so settings, security and the API can name them without
loading a provider."""

from __future__ import annotations

# Vendor codes are mapped onto these few classes inside each provider module;
# the engine's retry policy depends only on the class.


class ProviderError(Exception):
    """Base of every error a provider raises on purpose."""


class AuthExpired(ProviderError):
    """The credentials no longer work: the user must reconnect."""


class RateLimited(ProviderError):
    """Slow down; not the item's fault, so not counted as an attempt."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotFound(ProviderError):
    """The item (or path) is gone, or was replaced by a newer revision."""


class Transient(ProviderError):
    """Worth retrying later with backoff (network cut, file still changing).

    `restart=True` says the bytes received so far are not a prefix of the video
    (it changed under us), so a retry must not resume from them. `retry_after`
    parks just this item for that long (a per-file quota such as Drive's
    downloadQuotaExceeded) while the rest of the account goes on.
    """

    def __init__(
        self, message: str, *, restart: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.restart = restart
        self.retry_after = retry_after


class Permanent(ProviderError):
    """Retrying will not help; the reason is recorded for the user."""


class BadConfig(Permanent):
    """The connection or source settings are wrong (bad path, unknown bucket...)."""


class BadRequest(Permanent):
    """The request names what no listing gave: a page token or node id made up or mangled."""
