"""Videos: filtered, cursor-paginated listing and in-browser playback with Range."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse
from sqlalchemy import select

from vpack.api.deps import CurrentUser, CursorQuery, IdQuery, ServicesDep, SessionDep, cursor_id
from vpack.api.owned import OwnedVideo, owned
from vpack.api.schemas import FeedItem, FeedPage, VideoOut, VideoPage
from vpack.bounds import Moment
from vpack.db.models import Source, Video, VideoState

router = APIRouter(prefix="/api/videos", tags=["videos"])

_MEDIA_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".mkv": "video/x-matroska",
    ".webm": "video/webm",
    ".avi": "video/x-msvideo",
    ".ts": "video/mp2t",
    ".flv": "video/x-flv",
    ".wmv": "video/x-ms-wmv",
}


def video_out(v: Video) -> VideoOut:
    return VideoOut(
        id=v.id,
        source_id=v.source_id,
        camera=v.camera,
        name=v.name,
        remote_path=v.remote_path,
        size=v.size,
        sha256=v.sha256,
        state=v.state,
        error=v.error,
        probe_error=v.probe_error,
        recorded_start=v.recorded_start,
        recorded_end=v.recorded_end,
        duration_s=v.duration_s,
        codecs=v.codecs,
        local_path=v.local_path,
        removed_at=v.removed_at,
        removed_local_at=v.removed_local_at,
        downloaded_at=v.downloaded_at,
        created_at=v.created_at,
    )


@router.get("", response_model=VideoPage)
async def list_videos(
    user: CurrentUser,
    session: SessionDep,
    source_id: IdQuery | None = None,
    camera: str | None = Query(default=None, max_length=400),
    state: VideoState | None = None,
    recorded_from: Moment | None = None,
    recorded_to: Moment | None = None,
    cursor: CursorQuery = None,
    limit: int = Query(default=50, ge=1, le=500),
) -> VideoPage:
    """Newest first; pass `next_cursor` back as `cursor` for the next page."""
    query = owned(select(Video).join(Source), Source.owner_id, user)
    if source_id is not None:
        query = query.where(Video.source_id == source_id)
    if camera is not None:
        query = query.where(Video.camera == camera)
    if state is not None:
        query = query.where(Video.state == state.value)
    if recorded_from is not None:
        query = query.where(Video.recorded_start >= recorded_from)
    if recorded_to is not None:
        query = query.where(Video.recorded_start < recorded_to)
    if (after := cursor_id(cursor)) is not None:
        query = query.where(Video.id < after)
    rows = list((await session.execute(query.order_by(Video.id.desc()).limit(limit + 1))).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return VideoPage(
        items=[video_out(v) for v in rows], next_cursor=str(rows[-1].id) if more and rows else None
    )


@router.get("/feed", response_model=FeedPage)
async def video_feed(
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
    after: int = Query(default=0, ge=0, le=2**62),
    source_id: IdQuery | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
) -> FeedPage:
    """Published videos oldest first, from just after `after`.

    A consumer stores the `after` it was given and passes it back: each video comes
    once, in order, across restarts on either side; none published by a slower
    concurrent commit is skipped (numbers are given out under one row lock)."""
    query = owned(select(Video).join(Source), Source.owner_id, user).where(
        Video.published_seq > after
    )
    if source_id is not None:
        query = query.where(Video.source_id == source_id)
    rows = (await session.execute(query.order_by(Video.published_seq).limit(limit))).scalars()
    items = [
        FeedItem(
            seq=v.published_seq,
            id=v.id,
            source_id=v.source_id,
            camera=v.camera,
            name=v.name,
            path=str(services.store.absolute(v.local_path or "")),
            content_url=f"/api/videos/{v.id}/content",
            size=v.size,
            sha256=v.sha256,
            recorded_start=v.recorded_start,
            recorded_end=v.recorded_end,
            published_at=v.downloaded_at,
        )
        for v in rows
        if v.published_seq is not None
    ]
    return FeedPage(items=items, after=items[-1].seq if items else after)


@router.get("/{video_id}", response_model=VideoOut)
async def get_video(video: OwnedVideo) -> VideoOut:
    return video_out(video)


@router.get("/{video_id}/content", response_class=FileResponse)
async def video_content(video: OwnedVideo, services: ServicesDep) -> FileResponse:
    """The verified copy; honours Range so browsers can seek while playing."""
    if video.state != VideoState.DONE or not video.local_path:
        raise HTTPException(409, f"video {video.id} is not downloaded yet ({video.state})")
    if video.removed_local_at is not None:
        when = f"{video.removed_local_at:%Y-%m-%d %H:%M} UTC"
        raise HTTPException(410, f"the copy of video {video.id} was deleted by retention on {when}")
    path = services.store.absolute(video.local_path)
    if not path.is_file():
        raise HTTPException(410, f"the copy of video {video.id} is no longer on disk")
    media_type = _MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")
    return FileResponse(
        path, media_type=media_type, filename=path.name, content_disposition_type="inline"
    )
