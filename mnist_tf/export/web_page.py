"""Serves the draw-a-digit page (`web/`) and one LiteRT export to a browser, on the local machine by default.

  /                   web/index.html, its scripts, and web/node_modules (LiteRT.js, installed with `npm ci`)
  /models/...         report.json and the .tflite files of the LiteRT export (mnist_tf/export/litert.py)

Nothing else is served: paths outside these two folders, and any file of the export that is not a model or the
report, are 404. The report is served without the training machine's paths (its folders, where the SavedModel
is), and a browser that hangs up mid-download is not an error worth a line.
"""

from __future__ import annotations

import errno
import functools
import http.server
import io
import json
import os
import sys
import urllib.parse
from http import HTTPStatus
from pathlib import Path
from typing import Any, ClassVar

from mnist_tf.errors import MnistTfError, first_line
from mnist_tf.export.litert_files import REPORT_FILE, is_litert_file

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
MODELS = "/models/"


def litert_export(path: str | os.PathLike) -> Path:
    """A LiteRT export folder (with report.json), or the folder of its versions: then the highest one."""
    path = Path(path)
    if (path / REPORT_FILE).is_file():
        return _servable(path)
    versions = [int(p.name) for p in path.iterdir() if p.name.isdigit()] if path.is_dir() else []
    versions = [v for v in versions if (path / str(v) / REPORT_FILE).is_file()]
    if not versions:
        raise MnistTfError(
            f"no LiteRT export at {path}: neither {REPORT_FILE} nor version folders with one (train or run "
            "scripts/export.py first; its LiteRT files go to <export_dir>/litert/<name>/<version>)"
        )
    return _servable(path / str(max(versions)))


def _servable(export: Path) -> Path:
    """`export`, whose report reads and whose verified models are all there: said now, in one line, rather than by a
    page that fails in the browser."""
    report = export / REPORT_FILE
    try:
        kept = [
            name for name, variant in json.loads(report.read_text())["variants"].items() if not variant.get("refused")
        ]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise MnistTfError(
            f"{report}: not a LiteRT export's report ({first_line(e)}); export the model again"
        ) from None
    missing = [name for name in kept if not (export / f"{name}.tflite").is_file()]
    if not kept or missing:
        problem = f"{missing[0]}.tflite, which its report names, is missing" if missing else "no verified model"
        raise MnistTfError(f"{export}: {problem}; export the model again")
    return export


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map: ClassVar[dict[str, str]] = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
    }

    def __init__(self, *args, models: Path, **kwargs) -> None:
        self.models = models
        super().__init__(*args, directory=os.fspath(WEB_DIR), **kwargs)

    def send_head(self) -> Any:
        path = self._path()
        if "\x00" in path:  # no file name holds one (the file system refuses it): a bad request, answered
            self.send_error(HTTPStatus.BAD_REQUEST, "a path with a null byte")
            return None
        name = path.removeprefix(MODELS)
        if path.startswith(MODELS) and not _is_served(name):
            self.send_error(HTTPStatus.NOT_FOUND)
            return None
        if path.startswith(MODELS) and name == REPORT_FILE and (self.models / name).is_file():
            try:
                body = public_report(self.models / name)
            except (OSError, ValueError):
                self.send_error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{REPORT_FILE} cannot be read")
                return None
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return io.BytesIO(body)
        return super().send_head()

    def translate_path(self, path: str) -> str:
        if self._path().startswith(MODELS):
            return os.fspath(self.models / self._path().removeprefix(MODELS))
        return super().translate_path(path)

    def list_directory(self, path: str) -> None:
        self.send_error(HTTPStatus.NOT_FOUND)  # files only: no folder listings

    def _path(self) -> str:
        return urllib.parse.unquote(self.path.split("?", 1)[0].split("#", 1)[0])

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")  # a new export is seen at the next reload
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        if len(args) > 1 and str(args[1]).startswith(("4", "5")):  # errors only, not every request
            super().log_message(format, *args)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):  # the client went away (a reload, a closed tab)
            return
        super().handle_error(request, client_address)


def public_report(path: Path) -> bytes:
    """A LiteRT report as any client may see it: without the run's folders (the Config's *_dir settings and
    init_from), and the
    SavedModel named by <name>/<version> instead of its path."""
    report = json.loads(path.read_text())
    if isinstance(report.get("config"), dict):
        report["config"] = {k: v for k, v in report["config"].items() if not k.endswith("_dir") and k != "init_from"}
    if isinstance(report.get("saved_model"), str):
        report["saved_model"] = "/".join(Path(report["saved_model"]).parts[-2:])
    return json.dumps(report).encode()


def _is_served(name: str) -> bool:
    """Of a LiteRT export's folder, only the report and the models."""
    return name == REPORT_FILE or (is_litert_file(name) and "/" not in name and not name.startswith("."))


def make_server(models: Path, host: str, port: int) -> http.server.ThreadingHTTPServer:
    """A server of the page and `models` on host:port (port 0: any free one); call serve_forever() on it."""
    if not (WEB_DIR / "node_modules" / "@litertjs" / "core").is_dir():
        raise MnistTfError(f"LiteRT.js is not installed in {WEB_DIR}/node_modules: run npm ci --prefix {WEB_DIR}")
    handler = functools.partial(_Handler, models=models)
    try:
        return _Server((host, port), handler)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            in_use = f"port {port} on {host} is in use: stop what holds it, or choose another --port"
            raise MnistTfError(in_use) from None
        raise MnistTfError(f"cannot listen on {host}:{port}: {e.strerror}") from None
