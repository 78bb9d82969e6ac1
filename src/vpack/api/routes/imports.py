"""Administrators import an existing VPACK install (its events.db) into this service."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request

from vpack.api.deps import AdminUser, ServicesDep, client_ip
from vpack.api.schemas import VpackImportIn, VpackImportOut
from vpack.vpack_import import ImportOptions, VpackDatabaseError, import_vpack

router = APIRouter(prefix="/api/admin/import", tags=["import"])


def _allowed_database(raw: str, roots: list[str]) -> Path:
    """The database path, only inside the folders the operator opened (VPACK_LOCAL_ROOTS)."""
    if not os.path.isabs(raw) or "\x00" in raw:
        raise HTTPException(400, "give the absolute path of VPACK's events.db")
    real = Path(os.path.realpath(raw))
    if not any(real == Path(r) or Path(r) in real.parents for r in roots):
        raise HTTPException(
            403, f"{raw} is outside the folders this server allows (VPACK_LOCAL_ROOTS)"
        )
    return real


@router.post("/vpack", response_model=VpackImportOut)
async def import_from_vpack(
    body: VpackImportIn, admin: AdminUser, request: Request, services: ServicesDep
) -> VpackImportOut:
    """VPACK's sources, camera names and download history, owned by the calling admin.
    Idempotent; `dry_run` answers the same report and changes nothing."""
    roots = services.settings.allowed_local_roots
    path = _allowed_database(body.path, roots)
    options = ImportOptions(
        owner_id=admin.id,
        dry_run=body.dry_run,
        redownload_missing=body.redownload_missing,
        allowed_roots=roots,  # through the API, local folders only inside the roots
        data_dir=services.settings.data_dir,
        zone=services.settings.zone,
        user_id=admin.id,
        ip=client_ip(request),
    )
    try:
        report = await import_vpack(services.db, path, options)
    except VpackDatabaseError as exc:
        raise HTTPException(422, f"{exc}; nothing was changed") from None
    return VpackImportOut.model_validate(report.as_dict())
