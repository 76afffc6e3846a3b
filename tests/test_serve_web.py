"""scripts/serve_web.py and mnist_tf/export/web_page.py: what is served, what is not, and one-line errors."""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO

from mnist_tf.errors import MnistTfError
from mnist_tf.export import litert_files, web_page

pytestmark = pytest.mark.skipif(
    not (web_page.WEB_DIR / "node_modules" / "@litertjs" / "core").is_dir(),
    reason="LiteRT.js is not installed (npm ci --prefix web)",
)


@pytest.fixture
def export(tmp_path: Path) -> Path:
    """A LiteRT export folder as the server sees it: versions, a report, models and a file it must not serve."""
    for version in ("1", "2"):
        (tmp_path / version).mkdir()
        report = {"version": version, "variants": {"int8": {"refused": None}, "dynamic_range": {"refused": "wrong"}}}
        (tmp_path / version / litert_files.REPORT_FILE).write_text(json.dumps(report))
        (tmp_path / version / "int8.tflite").write_bytes(b"TFL3" + version.encode())
    (tmp_path / "2" / "notes.txt").write_text("private")
    (tmp_path / "2" / "float32.tflite").write_bytes(bytes(8 << 20))  # big enough to be cut off mid-download
    return tmp_path


@pytest.fixture
def url(export: Path):
    server = web_page.make_server(web_page.litert_export(export), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)  # a quick shutdown
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], b""


def test_serves_the_page_litert_js_and_the_highest_versions_models(url):
    status, kind, body = get(f"{url}/")
    assert (status, kind) == (200, "text/html") and b"Draw a digit" in body
    assert json.loads(get(f"{url}/models/report.json")[2])["version"] == "2"
    assert get(f"{url}/models/int8.tflite")[2] == b"TFL32"
    wasm = next((web_page.WEB_DIR / "node_modules" / "@litertjs" / "core" / "wasm").glob("*.wasm")).name
    assert get(f"{url}/node_modules/@litertjs/core/wasm/{wasm}")[:2] == (200, "application/wasm")


@pytest.mark.parametrize(
    "path",
    ["/models/notes.txt", "/models/../1/int8.tflite", "/models/%2e%2e/1/report.json", "/node_modules/", "/nothing"],
)
def test_serves_nothing_else(url, path):
    assert get(f"{url}{path}")[0] == 404


@pytest.mark.parametrize("path", ["/%00", "/index.html%00.js", "/models/%00.tflite"])
def test_a_path_with_a_null_byte_is_a_bad_request_in_one_log_line(url, path, capsys):
    assert get(f"{url}{path}")[0] == 400
    assert get(f"{url}/models/int8.tflite")[0] == 200  # still serving
    logged = capsys.readouterr().err
    assert "Traceback" not in logged and len(logged.strip().splitlines()) == 1 and '" 400 ' in logged, logged


def test_the_served_report_carries_no_local_paths(export, url):
    report = {
        "saved_model": str(export.parent / "saved_models" / "lenet" / "2"),
        "config": {"model": "lenet", "data_dir": "/home/someone/mnist", "model_dir": "/home/someone/runs/lenet"},
        "variants": {"int8": {"test_accuracy": 0.99}},
    }
    (export / "2" / litert_files.REPORT_FILE).write_text(json.dumps(report))
    status, kind, body = get(f"{url}/models/report.json")
    assert (status, kind) == (200, "application/json")
    served = json.loads(body)
    assert served == {"saved_model": "lenet/2", "config": {"model": "lenet"}, "variants": report["variants"]}
    assert (export / "2" / litert_files.REPORT_FILE).read_text() == json.dumps(report)  # the file itself is kept whole


def test_clients_that_hang_up_mid_download_are_no_error(url, capsys):
    port = int(url.rsplit(":", 1)[1])
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            client.sendall(b"GET /models/float32.tflite HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            client.recv(1024)  # the headers and the first bytes, then gone without reading the rest
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # a reset, as browsers do
    assert get(f"{url}/models/int8.tflite")[0] == 200  # still serving
    logged = capsys.readouterr().err
    assert "Traceback" not in logged and "Error" not in logged, logged


def test_a_folder_without_an_export_is_one_line(tmp_path):
    with pytest.raises(MnistTfError, match=r"^no LiteRT export at .*: neither report.json nor version folders"):
        web_page.litert_export(tmp_path)


@pytest.mark.parametrize(
    "damage, message",
    [
        ("report", r"report.json: not a LiteRT export's report \(Expecting"),
        ("variants", r"report.json: not a LiteRT export's report \('variants'\)"),
        ("model", r"/2: int8.tflite, which its report names, is missing; export the model again$"),
        ("all refused", r"/2: no verified model; export the model again$"),
    ],
)
def test_an_export_the_page_cannot_load_is_one_line_before_serving(export, damage, message):
    report = export / "2" / litert_files.REPORT_FILE
    if damage == "report":
        report.write_text("{")
    elif damage == "variants":
        report.write_text("{}")
    elif damage == "model":
        (export / "2" / "int8.tflite").unlink()
    else:
        report.write_text(json.dumps({"variants": {"int8": {"refused": "it disagrees"}}}))
    with pytest.raises(MnistTfError, match=message):
        web_page.litert_export(export)


@pytest.mark.slow
def test_the_script_prints_its_url_and_refuses_a_port_in_use(export):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, REPO / "scripts" / "serve_web.py", f"--litert_dir={export}", f"--port={port}"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: port {port} on 127.0.0.1 is in use: stop what holds it, or choose another --port"
    ]
    missing = subprocess.run(
        [sys.executable, REPO / "scripts" / "serve_web.py", f"--litert_dir={export / 'nowhere'}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 1 and missing.stderr.startswith(f"error: no LiteRT export at {export / 'nowhere'}")
