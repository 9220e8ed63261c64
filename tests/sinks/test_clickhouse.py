import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sinks.clickhouse import ChdbDsn, ChdbFolderBusy, ServerDsn, connect, parse_dsn


def test_parse_chdb_paths(tmp_path, monkeypatch):
    assert parse_dsn(f"chdb://{tmp_path}/db") == ChdbDsn(tmp_path / "db")
    monkeypatch.chdir(tmp_path)
    assert parse_dsn("chdb://var/chdb") == ChdbDsn(tmp_path / "var" / "chdb")


def test_parse_server_dsn():
    assert parse_dsn("https://povhub:p%40ss@ch.example.org:8443/povhub") == ServerDsn(
        secure=True, host="ch.example.org", port=8443, username="povhub", password="p@ss", database="povhub"
    )
    assert parse_dsn("http://localhost") == ServerDsn(False, "localhost", None, None, None, None)
    assert str(parse_dsn("http://u:secret@h:8123/db")) == "http://u@h:8123/db"


@pytest.mark.parametrize(
    "dsn",
    [
        "",
        "localhost:8123",
        "chdb://",
        "clickhouse://u:secret@h:9000/db",
        "http://u:secret@:8123/db",
        "http://u:secret@h:99999/db",
        "http://u:secret@h:port/db",
        "http://u:secret@h:8123/db/extra",
        "http://u:secret@h:8123/db?compress=1",
    ],
)
def test_parse_rejects_with_one_line_without_password(dsn):
    with pytest.raises(ValueError) as caught:
        parse_dsn(dsn)
    message = str(caught.value)
    assert message and "\n" not in message and "secret" not in message


def test_connect_creates_the_folder_and_clients_share_the_engine(tmp_path):
    dsn = f"chdb://{tmp_path}/new/chdb"
    first = connect(dsn)
    second = connect(dsn)
    try:
        assert (tmp_path / "new" / "chdb").is_dir()
        first.command("CREATE TABLE t (x UInt8) ENGINE = MergeTree ORDER BY x")
        first.insert("t", [[1]], column_names=["x"])
        assert second.query("SELECT count() FROM t").result_rows == [(1,)]
    finally:
        first.close()
        second.close()


def test_second_folder_in_one_process_is_refused_until_the_first_is_closed(tmp_path):
    first = connect(f"chdb://{tmp_path}/a")
    try:
        with pytest.raises(ChdbFolderBusy, match="one folder per process"):
            connect(f"chdb://{tmp_path}/b")
    finally:
        first.close()
    connect(f"chdb://{tmp_path}/b").close()


def test_folder_held_by_another_process(tmp_path):
    dsn = f"chdb://{tmp_path}/chdb"
    holder = textwrap.dedent(
        f"""
        import sys
        from sinks.clickhouse import connect
        client = connect({dsn!r})
        print("ready", flush=True)
        sys.stdin.read()
        """
    )
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-c", holder],
        cwd=root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        with pytest.raises(ChdbFolderBusy, match=rf"in use by another process \(PID: {proc.pid}\)"):
            connect(dsn)
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    connect(dsn).close()


def test_the_embedded_engine_merges_at_the_lowest_cpu_priority(tmp_path):
    # a fresh process, so the engine starts here with connect's options (one engine per process)
    probe = textwrap.dedent(
        f"""
        from sinks.clickhouse import connect
        client = connect({f"chdb://{tmp_path}/chdb"!r})
        [(nice,)] = client.query("SELECT value FROM system.server_settings "
                                 "WHERE name = 'os_threads_nice_value_merge_mutate'").result_rows
        client.close()
        print(nice)
        """
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "19"
