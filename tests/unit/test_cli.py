"""The `vpack` command as other tools use it: exact flags, JSON shapes, exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from vpack.cli.commands import _Bar, main


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (time.time() - 3600,) * 2)
    return path


@pytest.fixture
def vpack(cli_env: dict[str, str]):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(main, list(args), env=cli_env, catch_exceptions=False)

    return run


def test_init_is_idempotent(vpack, cli_env: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    first, second = vpack("init"), vpack("init")
    assert first.exit_code == second.exit_code == 0
    assert cli_env["VPACK_DATA_DIR"] in first.output
    assert (Path(cli_env["VPACK_DATA_DIR"]) / "videos").is_dir()


def test_add_sync_list_remove(vpack, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _write(tmp_path / "shop" / "Cam1" / "a.mp4", b"a" * 100)
    _write(tmp_path / "shop" / "Cam2" / "b.mkv", b"b" * 50)
    added = vpack(
        "sources",
        "add",
        "local",
        "--name",
        "Shop",
        "--path",
        str(tmp_path / "shop"),
        "--interval",
        "60",
        "--settle",
        "0",
        "--json",
    )
    assert added.exit_code == 0, added.output
    source_id = json.loads(added.output)["id"]

    synced = vpack("sync", "--json")
    assert synced.exit_code == 0, synced.output
    result = json.loads(synced.output)
    assert {k: result[k] for k in ("new", "downloaded", "bytes", "failed")} == {
        "new": 2,
        "downloaded": 2,
        "bytes": 150,
        "failed": 0,
    }
    assert result["sources"][0]["id"] == source_id

    listed = json.loads(vpack("videos", "list", "--json").output)
    assert {v["name"] for v in listed} == {"a.mp4", "b.mkv"}
    fields = {
        "id",
        "source_id",
        "camera",
        "name",
        "size",
        "sha256",
        "path",
        "state",
        "recorded_start",
        "duration_s",
        "error",
    }
    for video in listed:
        assert set(video) == fields
        assert video["state"] == "done" and Path(video["path"]).is_absolute()
        assert (
            Path(video["path"]).read_bytes()
            == (tmp_path / "shop" / video["camera"] / video["name"]).read_bytes()
        )
    assert json.loads(vpack("videos", "list", "--state", "failed", "--json").output) == []
    assert (
        len(json.loads(vpack("videos", "list", "--source", str(source_id), "--json").output)) == 2
    )

    text = vpack("sync").output
    assert "new 0, downloaded 0" in text
    sources = json.loads(vpack("sources", "list", "--json").output)
    assert sources[0]["counts"]["done"] == 2 and sources[0]["interval_s"] == 60
    assert "Shop" in vpack("sources", "list").output

    removed = vpack("sources", "remove", str(source_id))
    assert removed.exit_code == 0 and "kept" in removed.output
    assert Path(listed[0]["path"]).exists()
    assert "no sources yet" in vpack("sources", "list").output


def test_plain_add_prints_the_id(vpack, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "f").mkdir()
    out = vpack("sources", "add", "local", "--name", "F", "--path", str(tmp_path / "f"))
    assert out.exit_code == 0 and out.output.strip() == "1"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing", "does not exist"),
        (lambda p: _write(p / "a.mp4", b"x"), "not a folder"),
    ],
)
def test_bad_paths_are_refused(vpack, tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    out = vpack("sources", "add", "local", "--name", "x", "--path", str(make(tmp_path)))
    assert out.exit_code == 1 and message in out.output and "Traceback" not in out.output
    assert json.loads(vpack("sources", "list", "--json").output) == []


def test_the_data_folder_cannot_be_a_source(vpack, cli_env) -> None:  # type: ignore[no-untyped-def]
    data = Path(cli_env["VPACK_DATA_DIR"])
    vpack("init")
    inside = vpack("sources", "add", "local", "--name", "x", "--path", str(data / "videos"))
    holding = vpack("sources", "add", "local", "--name", "x", "--path", str(data.parent))
    assert inside.exit_code == 1 and "inside VPACK's data folder" in inside.output
    assert holding.exit_code == 1 and "contains VPACK's data folder" in holding.output


def test_unknown_ids_and_bad_flags(vpack) -> None:  # type: ignore[no-untyped-def]
    sync = vpack("sync", "42")
    assert sync.exit_code == 1 and "no source with id 42" in sync.output
    remove = vpack("sources", "remove", "7")
    assert remove.exit_code == 1 and "no source with id 7" in remove.output
    interval = vpack("sources", "add", "local", "--name", "x", "--path", "/", "--interval", "1")
    assert interval.exit_code == 2 and "--interval" in interval.output
    state = vpack("videos", "list", "--state", "lost")
    assert state.exit_code == 2


def test_purge_deletes_the_copies(vpack, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _write(tmp_path / "s" / "a.mp4", b"a")
    vpack("sources", "add", "local", "--name", "S", "--path", str(tmp_path / "s"), "--settle", "0")
    vpack("sync")
    (video,) = json.loads(vpack("videos", "list", "--json").output)
    out = vpack("sources", "remove", "1", "--purge")
    assert out.exit_code == 0 and "deleted 1" in out.output
    assert not Path(video["path"]).exists()


def test_bad_setting_is_reported(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "VPACK_CONCURRENCY": "lots"}
    out = CliRunner().invoke(main, ["init"], env=env)
    assert out.exit_code == 1 and "VPACK_" in out.output and "concurrency" in out.output


def _drop_root_powers() -> list[str]:
    """Root reads any file; drop that power so a 000 file is unreadable like for anyone."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to test permissions as root"
    return [setpriv, "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"]


@pytest.mark.slow
def test_unreadable_file_fails_clearly_and_the_rest_is_copied(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    locked = _write(tmp_path / "s" / "cam" / "locked.mp4", b"secret")
    _write(tmp_path / "s" / "cam" / "open.mp4", b"fine")
    locked.chmod(0)
    cmd = [*_drop_root_powers(), sys.executable, "-m", "vpack.cli"]
    add = subprocess.run(
        [
            *cmd,
            "sources",
            "add",
            "local",
            "--name",
            "S",
            "--path",
            str(tmp_path / "s"),
            "--settle",
            "0",
        ],
        env=cli_env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert add.stdout.strip() == "1"
    sync = subprocess.run([*cmd, "sync", "--json"], env=cli_env, capture_output=True, text=True)
    assert sync.returncode == 1, sync.stderr
    assert json.loads(sync.stdout)["downloaded"] == 1 and json.loads(sync.stdout)["failed"] == 1
    listed = subprocess.run(
        [*cmd, "videos", "list", "--json"], env=cli_env, capture_output=True, text=True, check=True
    )
    by_name = {v["name"]: v for v in json.loads(listed.stdout)}
    assert by_name["open.mp4"]["state"] == "done"
    assert "permission denied" in by_name["locked.mp4"]["error"]
    locked.chmod(0o644)  # fixed by the user: the next sync takes it
    again = subprocess.run([*cmd, "sync", "--json"], env=cli_env, capture_output=True, text=True)
    assert again.returncode == 0 and json.loads(again.stdout)["downloaded"] == 1


def test_users_create_reads_the_password_from_stdin(cli_env: dict[str, str]) -> None:
    runner = CliRunner()
    made = runner.invoke(
        main,
        ["users", "create", "--email", "Boss@Shop.vn", "--admin", "--password-stdin"],
        input="long-enough-pw\n",
        env=cli_env,
    )
    assert made.exit_code == 0 and "administrator boss@shop.vn" in made.output
    again = runner.invoke(
        main,
        ["users", "create", "--email", "boss@shop.vn", "--password-stdin"],
        input="long-enough-pw\n",
        env=cli_env,
    )
    assert again.exit_code == 1 and "already exists" in again.output
    weak = runner.invoke(
        main,
        ["users", "create", "--email", "w@shop.vn", "--password-stdin"],
        input="short\n",
        env=cli_env,
    )
    assert weak.exit_code == 1 and "at least 8" in weak.output
    prompted = runner.invoke(
        main,
        ["users", "create", "--email", "p@shop.vn"],
        input="long-enough-pw\nlong-enough-pw\n",
        env=cli_env,
    )
    assert prompted.exit_code == 0 and "user p@shop.vn" in prompted.output


def test_keys_rotate_reports_the_new_key(cli_env: dict[str, str]) -> None:
    runner = CliRunner()
    init = runner.invoke(main, ["init"], env=cli_env)
    assert "vault key" in init.output and "back it up" in init.output
    assert "vault key" not in runner.invoke(main, ["init"], env=cli_env).output
    rotated = runner.invoke(main, ["keys", "rotate"], env=cli_env)
    assert rotated.exit_code == 0 and "re-encrypted 0 connection(s)" in rotated.output
    env_key = {**cli_env, "VPACK_SECRET_KEY": "A" * 43 + "="}
    refused = runner.invoke(main, ["keys", "rotate"], env=env_key)
    assert refused.exit_code == 1 and "VPACK_PREVIOUS_SECRET_KEYS" in refused.output


def test_a_bucket_is_connected_browsed_and_synced_from_the_command_line(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """The CLI path for key and device providers: connections add/list/browse, then
    `sources add remote` and `sync`, against moto's S3 server."""
    import uuid

    from tests.providers.s3.harness import KEY_ID, SECRET, admin_client, moto_endpoint

    bucket = f"vpack-cli-{uuid.uuid4().hex[:12]}"
    s3 = admin_client()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="footage/Cam1/order-1.mp4", Body=b"clip" * 1000)
    runner = CliRunner()

    def run(*args: str, stdin: str | None = None) -> Result:
        return runner.invoke(main, list(args), env=cli_env, input=stdin, catch_exceptions=False)

    made = run(
        "connections", "add", "s3", "--name", "Shop bucket",
        "--set", f"bucket={bucket}", "--set", f"endpoint_url={moto_endpoint()}",
        "--set", "path_style=true", "--set", f"access_key_id={KEY_ID}", "--json",
        stdin=f"{SECRET}\n",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    assert SECRET not in made.output  # asked for without echo
    connection = json.loads(made.output[made.output.index("{") :])
    assert connection["account"] == f"s3://{bucket} on {moto_endpoint()}"

    listed = json.loads(run("connections", "list", "--json").output)
    assert [c["name"] for c in listed] == ["Shop bucket"] and SECRET not in str(listed)
    top = json.loads(run("connections", "browse", str(connection["id"]), "--json").output)
    assert [n["id"] for n in top["nodes"]] == ["footage/"]

    source = run(
        "sources", "add", "remote", "--connection", str(connection["id"]), "--name", "Desks",
        "--select", "footage/", "--json",
    )  # fmt: skip
    assert source.exit_code == 0, source.output
    report = json.loads(run("sync", "--json").output)
    assert report["downloaded"] == 1 and report["failed"] == 0


def test_connections_add_says_what_it_cannot_do(vpack) -> None:  # type: ignore[no-untyped-def]
    unknown = vpack("connections", "add", "ftp")
    assert (
        unknown.exit_code == 1
        and "unknown provider 'ftp'" in unknown.output
        and "s3" in unknown.output
    )
    oauth = vpack("connections", "add", "google_drive")
    assert oauth.exit_code == 1 and "web UI" in oauth.output
    bad = vpack("connections", "add", "s3", "--set", "bucket")
    assert bad.exit_code == 2 and "KEY=VALUE" in bad.output


def test_the_progress_bar_grows_with_what_the_scan_finds() -> None:
    bar = _Bar()
    bar.planned(0, 0)  # nothing waiting yet: no bar
    assert bar.bar is None
    bar.planned(1, 100)
    bar.advanced(1, 60)
    bar.planned(3, 400)  # the scan found two more while the first was downloading
    bar.advanced(2, 40)
    assert (bar.bar.length, bar.bar.pos, bar.bar.label) == (400, 100, "3 videos")
    bar.close()
