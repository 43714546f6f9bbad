"""Downloading against a real HTTP server on 127.0.0.1 (no other network is used)."""

import hashlib
import http.server
import io
import socket
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from movierec.data import (
    KNOWN_DATASETS,
    DataError,
    default_data_dir,
    fetch_dataset,
    load_dataset,
    resolve_dataset,
)


class Server:
    """Serves `files` (URL path -> bytes, or an int HTTP status) and records the paths requested."""

    def __init__(self) -> None:
        self.files: dict[str, bytes | int] = {}
        self.requests: list[str] = []
        self.truncate: set[str] = set()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                body = server.files.get(self.path, 404)
                if isinstance(body, int):
                    self.send_error(body)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if self.path in server.truncate else body)

            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/movielens"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def publish(self, zip_name: str, data: bytes, md5: str | None = None) -> None:
        self.files[f"/movielens/{zip_name}"] = data
        digest = md5 or hashlib.md5(data).hexdigest()
        self.files[f"/movielens/{zip_name}.md5"] = f"MD5 ({zip_name}) = {digest}\n".encode()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


def make_zip(source: Path, top: str, extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{top}/", "")
        for path in sorted(source.iterdir()):
            archive.write(path, f"{top}/{path.name}")
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def leftovers(data_dir: Path) -> list[str]:
    return sorted(p.name for p in data_dir.iterdir()) if data_dir.exists() else []


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_fetch_installs_verified_copy_then_uses_it(
    server: Server, tmp_path: Path, fixtures_dir: Path
) -> None:
    data = make_zip(fixtures_dir / "ml-100k", "ml-100k")
    server.publish("ml-100k.zip", data)
    calls: list[tuple[int, int | None]] = []
    data_dir = tmp_path / "data"
    path = fetch_dataset(
        "ml-100k", data_dir, base_url=server.url, progress=lambda done, total: calls.append((done, total))
    )
    assert path == data_dir / "ml-100k"
    assert leftovers(data_dir) == ["ml-100k"]  # no temporary folder left behind
    assert server.requests == ["/movielens/ml-100k.zip.md5", "/movielens/ml-100k.zip"]
    assert calls[0] == (0, len(data)) and calls[-1] == (len(data), len(data))
    pd.testing.assert_frame_equal(
        load_dataset(path).interactions, load_dataset(fixtures_dir / "ml-100k").interactions
    )
    # second call: present and complete, so no request at all
    assert fetch_dataset("ml-100k", data_dir, base_url=server.url) == path
    assert len(server.requests) == 2
    assert resolve_dataset("ml-100k", data_dir) == path


def test_corrupted_download_leaves_nothing(server: Server, tmp_path: Path, fixtures_dir: Path) -> None:
    data = make_zip(fixtures_dir / "ml-100k", "ml-100k")
    corrupted = data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]
    server.publish("ml-100k.zip", corrupted, md5=hashlib.md5(data).hexdigest())
    data_dir = tmp_path / "data"
    with pytest.raises(DataError, match="checksum mismatch") as info:
        fetch_dataset("ml-100k", data_dir, base_url=server.url)
    assert "nothing was installed" in str(info.value)
    assert leftovers(data_dir) == []


def test_unreadable_zip_with_matching_checksum(server: Server, tmp_path: Path) -> None:
    server.publish("ml-1m.zip", b"this is not a zip file")
    with pytest.raises(DataError, match="not a readable zip"):
        fetch_dataset("ml-1m", tmp_path, base_url=server.url)
    assert leftovers(tmp_path) == []


def test_truncated_download(server: Server, tmp_path: Path, fixtures_dir: Path) -> None:
    server.publish("ml-100k.zip", make_zip(fixtures_dir / "ml-100k", "ml-100k"))
    server.truncate.add("/movielens/ml-100k.zip")
    with pytest.raises(DataError, match="nothing was installed"):
        fetch_dataset("ml-100k", tmp_path, base_url=server.url)
    assert leftovers(tmp_path) == []


def test_zip_without_the_layout_files(server: Server, tmp_path: Path, fixtures_dir: Path) -> None:
    server.publish("ml-100k.zip", make_zip(fixtures_dir / "ml-csv", "ml-100k"))
    with pytest.raises(DataError, match=r"the zip lacks u\.data, u\.item, u\.genre"):
        fetch_dataset("ml-100k", tmp_path, base_url=server.url)
    assert leftovers(tmp_path) == []


def test_zip_member_outside_its_folder_is_refused(server: Server, tmp_path: Path, fixtures_dir: Path) -> None:
    server.publish("ml-100k.zip", make_zip(fixtures_dir / "ml-100k", "ml-100k", {"../escape.txt": b"x"}))
    with pytest.raises(DataError, match="path outside its folder"):
        fetch_dataset("ml-100k", tmp_path / "data", base_url=server.url)
    assert not (tmp_path / "escape.txt").exists()
    assert leftovers(tmp_path / "data") == []


def test_unreachable_server_says_where_to_put_the_files(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/movielens"
    with pytest.raises(DataError) as info:
        fetch_dataset("ml-1m", tmp_path / "data", base_url=url)
    message = str(info.value)
    assert f"could not reach {url}/ml-1m.zip.md5" in message
    assert "offline" in message
    assert "verify=False" not in message  # skipping the check would not help
    dest = tmp_path / "data" / "ml-1m"
    assert (
        f"put the files of its ml-1m/ folder (ratings.dat, movies.dat (optionally users.dat)) in {dest}"
        in message
    )
    assert "https://files.grouplens.org/datasets/movielens/ml-1m.zip" in message
    assert leftovers(tmp_path / "data") == []


def test_missing_checksum_file(server: Server, tmp_path: Path, fixtures_dir: Path) -> None:
    server.files["/movielens/ml-100k.zip"] = make_zip(fixtures_dir / "ml-100k", "ml-100k")
    with pytest.raises(DataError, match=r"HTTP 404.*pass verify=False to skip the check"):
        fetch_dataset("ml-100k", tmp_path, base_url=server.url)
    assert leftovers(tmp_path) == []
    assert fetch_dataset("ml-100k", tmp_path, base_url=server.url, verify=False) == tmp_path / "ml-100k"


def test_server_error_on_the_zip(server: Server, tmp_path: Path) -> None:
    server.files["/movielens/ml-100k.zip.md5"] = b"0123456789abcdef0123456789abcdef  ml-100k.zip\n"
    server.files["/movielens/ml-100k.zip"] = 500
    with pytest.raises(DataError, match="the server answered HTTP 500"):
        fetch_dataset("ml-100k", tmp_path, base_url=server.url)


def test_ml10m_folder_is_renamed_to_the_dataset_name(
    server: Server, tmp_path: Path, fixtures_dir: Path
) -> None:
    assert KNOWN_DATASETS["ml-10m"].folder == "ml-10M100K"
    server.publish("ml-10m.zip", make_zip(fixtures_dir / "ml-dat", "ml-10M100K"))
    path = fetch_dataset("ml-10m", tmp_path, base_url=server.url)
    assert path == tmp_path / "ml-10m"
    assert load_dataset(path).layout == "ml-dat"


def test_incomplete_copy_is_replaced_and_failed_refetch_keeps_the_old(
    server: Server, tmp_path: Path, fixtures_dir: Path
) -> None:
    dest = tmp_path / "ml-100k"
    dest.mkdir()
    (dest / "u.data").write_bytes(b"1\t1\t1\t1\n")  # incomplete: no u.item, u.genre
    server.publish("ml-100k.zip", make_zip(fixtures_dir / "ml-100k", "ml-100k"))
    assert fetch_dataset("ml-100k", tmp_path, base_url=server.url) == dest
    assert (dest / "u.item").is_file()
    good = {p.name: p.read_bytes() for p in dest.iterdir()}
    server.publish("ml-100k.zip", b"garbage")
    with pytest.raises(DataError):
        fetch_dataset("ml-100k", tmp_path, base_url=server.url, force=True)
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == good
    assert leftovers(tmp_path) == ["ml-100k"]


def test_base_url_from_environment(server: Server, tmp_path: Path, fixtures_dir: Path, monkeypatch) -> None:
    server.publish("ml-100k.zip", make_zip(fixtures_dir / "ml-100k", "ml-100k"))
    monkeypatch.setenv("MOVIEREC_DATA_URL", server.url + "/")
    monkeypatch.setenv("MOVIEREC_DATA_DIR", str(tmp_path / "env-data"))
    assert default_data_dir() == tmp_path / "env-data"
    assert fetch_dataset("ml-100k") == tmp_path / "env-data" / "ml-100k"
    assert resolve_dataset("ml-100k") == tmp_path / "env-data" / "ml-100k"


def test_default_data_dir_without_environment(monkeypatch) -> None:
    monkeypatch.delenv("MOVIEREC_DATA_DIR", raising=False)
    assert default_data_dir() == Path.home() / ".cache" / "movierec" / "data"


def test_unknown_dataset_name(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown dataset 'ml-50m'; movierec can fetch: ml-100k, ml-1m"):
        fetch_dataset("ml-50m", tmp_path)


def test_resolve_existing_folder_is_used_as_is(fixtures_dir: Path, tmp_path: Path) -> None:
    assert resolve_dataset(fixtures_dir / "netflix", tmp_path) == fixtures_dir / "netflix"
    assert resolve_dataset(str(fixtures_dir / "ml-csv"), tmp_path) == fixtures_dir / "ml-csv"


def test_resolve_publisher_folder_name(tmp_path: Path, fixtures_dir: Path) -> None:
    import shutil

    shutil.copytree(fixtures_dir / "ml-dat", tmp_path / "ml-10M100K")
    assert resolve_dataset("ml-10m", tmp_path) == tmp_path / "ml-10M100K"


def test_resolve_missing_dataset_says_where_and_how(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        resolve_dataset("ml-25m", tmp_path)
    message = str(info.value)
    assert f"{tmp_path / 'ml-25m'} does not exist" in message
    assert "Run `movierec data fetch ml-25m`" in message
    assert f"put its files (ratings.csv, movies.csv) in {tmp_path / 'ml-25m'}" in message
    (tmp_path / "ml-25m").mkdir()
    (tmp_path / "ml-25m" / "ratings.csv").write_text("userId,movieId,rating,timestamp\n")
    with pytest.raises(DataError, match=r"exists but lacks movies\.csv"):
        resolve_dataset("ml-25m", tmp_path)


def test_resolve_own_data_and_unknown_names(tmp_path: Path, fixtures_dir: Path) -> None:
    import shutil

    shutil.copytree(fixtures_dir / "netflix", tmp_path / "netflix-prize")
    assert resolve_dataset("netflix-prize", tmp_path) == tmp_path / "netflix-prize"
    with pytest.raises(DataError, match="neither an existing folder nor a dataset movierec knows"):
        resolve_dataset("my-data", tmp_path)
    with pytest.raises(DataError, match="dataset folder does not exist"):
        resolve_dataset("./some/where", tmp_path)
