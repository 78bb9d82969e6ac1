"""Real VPACK databases for tests: its tables as VPACK's backend/database.py creates them.

The columns (and the ALTER TABLE additions, folded in) and the first-start rows follow
Binhnguyen041280/VPACK's `backend/database.py`; values as VPACK writes them: Vietnamese
status text, naive local timestamps, `config` JSON with `selected_tree_folders`."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE video_sources (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source_type TEXT NOT NULL CHECK(source_type IN ('local', 'cloud')),
    name TEXT NOT NULL,
    path TEXT NOT NULL,
    config TEXT,
    active INTEGER DEFAULT 1,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    folder_depth INTEGER DEFAULT 0,
    parent_folder_id TEXT
);
CREATE TABLE camera_configurations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source_id INTEGER NOT NULL,
    camera_name TEXT NOT NULL,
    camera_config TEXT,
    is_selected INTEGER DEFAULT 1,
    folder_path TEXT,
    stream_url TEXT,
    resolution TEXT,
    codec TEXT,
    capabilities TEXT,
    created_at TEXT DEFAULT CURRENT_TIMESTAMP,
    updated_at TEXT DEFAULT CURRENT_TIMESTAMP,
    FOREIGN KEY (source_id) REFERENCES video_sources (id) ON DELETE CASCADE,
    UNIQUE(source_id, camera_name)
);
CREATE TABLE sync_status (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source_id INTEGER NOT NULL,
    sync_enabled INTEGER DEFAULT 1,
    last_sync_timestamp TEXT,
    next_sync_timestamp TEXT,
    sync_interval_minutes INTEGER DEFAULT 10,
    last_sync_status TEXT DEFAULT 'pending',
    last_sync_message TEXT,
    files_downloaded_count INTEGER DEFAULT 0,
    total_download_size_mb REAL DEFAULT 0.0,
    error_severity TEXT,
    error_type TEXT,
    last_timer_run TEXT,
    timer_error_count INTEGER DEFAULT 0,
    error_count INTEGER DEFAULT 0,
    last_error_type TEXT DEFAULT NULL,
    created_at TEXT DEFAULT CURRENT_TIMESTAMP,
    updated_at TEXT DEFAULT CURRENT_TIMESTAMP,
    FOREIGN KEY (source_id) REFERENCES video_sources (id) ON DELETE CASCADE,
    UNIQUE(source_id)
);
CREATE TABLE downloaded_files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source_id INTEGER NOT NULL,
    camera_name TEXT NOT NULL,
    original_filename TEXT,
    local_file_path TEXT NOT NULL,
    file_size_bytes INTEGER DEFAULT 0,
    download_timestamp TEXT DEFAULT CURRENT_TIMESTAMP,
    recording_start_time TEXT,
    recording_end_time TEXT,
    file_format TEXT,
    checksum TEXT,
    sync_batch_id TEXT,
    is_processed INTEGER DEFAULT 0,
    created_at TEXT DEFAULT CURRENT_TIMESTAMP,
    drive_file_id TEXT,
    relative_path TEXT,
    processing_timestamp TEXT,
    processing_status TEXT,
    FOREIGN KEY (source_id) REFERENCES video_sources (id) ON DELETE CASCADE
);
CREATE TABLE file_list (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    program_type TEXT,
    days INTEGER,
    custom_path TEXT,
    file_path TEXT,
    ctime TEXT,
    created_at TEXT DEFAULT CURRENT_TIMESTAMP,
    is_processed INTEGER DEFAULT 0,
    priority INTEGER DEFAULT 0,
    status TEXT DEFAULT 'chưa bắt đầu',
    log_file_path TEXT,
    camera_name TEXT
);
INSERT INTO video_sources (id, source_type, name, path, config, active, created_at,
    folder_depth, parent_folder_id)
VALUES
    (1, 'local', 'Local Storage', '', '{}', 0, datetime('now'), 0, ''),
    (2, 'cloud', 'Google Storage', '', '{}', 0, datetime('now'), 0, '');
"""


@dataclass
class VpackDb:
    path: Path

    def __post_init__(self) -> None:
        with self._conn() as conn:
            conn.executescript(SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path)

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        with self._conn() as conn:
            return int(conn.execute(sql, params).lastrowid or 0)

    def add_drive_source(
        self, folders: list[tuple[str, str]], *, interval: int = 10, email: str | None = None
    ) -> int:
        """The Google Drive source as VPACK's step 3 stores it: one camera per folder."""
        tree = [
            {"id": fid, "name": name, "path": f"/My Drive/Project/{name}"} for fid, name in folders
        ]
        config: dict[str, Any] = {
            "selected_cameras": [name for _, name in folders],
            "camera_paths": {name: fid for fid, name in folders},
            "selected_tree_folders": tree,
            "original_source_type": "cloud_storage",
        }
        if email:
            config["user_email"] = email
        source = self.execute(
            "INSERT INTO video_sources (source_type, name, path, config, active) "
            "VALUES ('cloud', 'CloudStorage_shop', '/My Drive/Project', ?, 1)",
            (json.dumps(config),),
        )
        for fid, name in folders:
            self.execute(
                "INSERT INTO camera_configurations (source_id, camera_name, folder_path) "
                "VALUES (?, ?, ?)",
                (source, name, fid),
            )
        self.execute(
            "INSERT INTO sync_status (source_id, sync_interval_minutes, last_sync_status) "
            "VALUES (?, ?, 'thành công')",
            (source, interval),
        )
        return source

    def add_local_source(self, folder: Path, *, active: bool = True, interval: int = 10) -> int:
        cameras = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
        config = {
            "selected_cameras": cameras,
            "camera_paths": {c: str(folder / c) for c in cameras},
        }
        source = self.execute(
            "INSERT INTO video_sources (source_type, name, path, config, active) "
            "VALUES ('local', ?, ?, ?, ?)",
            (f"LocalStorage_{folder.name}", str(folder), json.dumps(config), int(active)),
        )
        self.execute(
            "INSERT INTO sync_status (source_id, sync_interval_minutes) VALUES (?, ?)",
            (source, interval),
        )
        return source

    def add_downloads(self, rows: list[dict[str, Any]]) -> None:
        """downloaded_files rows as VPACK's Drive sync tracks them (and file_list queue rows)."""
        with self._conn() as conn:
            conn.executemany(
                "INSERT INTO downloaded_files (source_id, camera_name, original_filename, "
                "local_file_path, file_size_bytes, download_timestamp, file_format, "
                "drive_file_id, relative_path, recording_start_time, is_processed, "
                "processing_status) VALUES (:source_id, :camera, :name, :path, :size, "
                "'2026-11-02T08:15:00.123456', '.mp4', :drive_id, '', :start, 1, 'đã xử lý')",
                [{"drive_id": None, "start": "2026-11-02 08:00:00", **r} for r in rows],
            )
            conn.executemany(
                "INSERT INTO file_list (program_type, file_path, ctime, camera_name, status) "
                "VALUES ('tự động', :path, '2026-11-02 08:00:00', :camera, 'hoàn thành')",
                rows,
            )
