"""A local HTTP server for the remote-source tests: real files with Range support, servers that
misbehave, and a minimal fake of the Hugging Face Hub's file-resolution routes.

Two servers share one handler and one log: the main one on 127.0.0.1 and a "CDN" on 127.0.0.2 (a
different host, so a redirect between them must drop the token). Nothing listens beyond loopback.

Routes (`REL` is a path under the served root folder):
- `/files/REL`      the file, with single-range `Range` support (206, `Content-Range`), HEAD too
- `/norange/REL`    ignores `Range`: 200 and the whole file, streamed until the client hangs up
- `/stall/REL`      accepts the request and never answers (until the server stops)
- `/lie/REL`        206 announcing the requested length, then half the bytes and a hang-up
- `/nosize/REL`     206 with `Content-Range: bytes A-B/*` and no total: the size is unknown
- `/flaky/REL`      answers 503 (then 429) to the first `flaky_failures` requests, then as /files
- `/redirect/REL`   302 to the same file under /files on the CDN host
- `/api/models/ORG/NAME[/revision/REV]`   the hub's model_info (siblings with sizes, a sha)
- `/ORG/NAME/resolve/REV/FILE`  the hub's file route: weights redirect to the CDN host, small files
  are served directly. A repo folder holding a `.private` file needs `Authorization: Bearer
  <HUB_TOKEN>` on the hub host (401 otherwise).

`ServedLog` records every request (host, path, range, authorization) and the body bytes sent.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

HUB_TOKEN = "hf_test_token_do_not_print"
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


@dataclass(frozen=True)
class Request:
    host: str  # the server's address that received it ("127.0.0.1" or "127.0.0.2")
    method: str
    path: str
    range: str | None
    authorization: str | None


@dataclass
class ServedLog:
    requests: list[Request] = field(default_factory=list)
    body_bytes: int = 0
    flaky_failures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sent(self, n: int) -> None:
        with self.lock:
            self.body_bytes += n

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.body_bytes = 0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, host: str, root: Path, log: ServedLog, stop: threading.Event) -> None:
        super().__init__((host, 0), _Handler)
        self.root = root
        self.log = log
        self.stop = stop
        self.cdn_base = ""  # set once both servers exist


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass

    def do_HEAD(self) -> None:
        self._handle(head=True)

    def do_GET(self) -> None:
        self._handle(head=False)

    # -- dispatch ------------------------------------------------------------------------------

    def _handle(self, *, head: bool) -> None:
        server = self.server
        path = urlsplit(self.path).path
        with server.log.lock:
            server.log.requests.append(
                Request(
                    server.server_address[0],  # type: ignore[arg-type]
                    "HEAD" if head else "GET",
                    path,
                    self.headers.get("Range"),
                    self.headers.get("Authorization"),
                )
            )
        kind, _, rest = path.lstrip("/").partition("/")
        rel = unquote(rest)
        if kind == "files":
            self._serve_file(rel, head=head)
        elif kind == "norange":
            self._serve_whole(rel, head=head)
        elif kind == "stall":
            server.stop.wait(30)
            self.close_connection = True
        elif kind == "lie":
            self._serve_lie(rel)
        elif kind == "nosize":
            self._serve_file(rel, head=head, total_known=False)
        elif kind == "flaky":
            with server.log.lock:
                failing = server.log.flaky_failures
                server.log.flaky_failures = max(0, failing - 1)
            if failing:
                status = 503 if failing % 2 else 429
                self._plain(status, "try again later", extra={"Retry-After": "0"})
            else:
                self._serve_file(rel, head=head)
        elif kind == "redirect":
            self._redirect(f"{server.cdn_base}/files/{rest}")
        elif kind == "api":
            self._hub_api(path)
        else:
            self._hub_resolve(path, head=head)

    # -- plain files ---------------------------------------------------------------------------

    def _file(self, rel: str) -> Path | None:
        root = self.server.root.resolve()
        target = (root / rel).resolve()
        if root not in target.parents or not target.is_file():
            self._plain(404, "not found")
            return None
        return target

    def _serve_file(self, rel: str, *, head: bool, total_known: bool = True) -> None:
        target = self._file(rel)
        if target is None:
            return
        size = target.stat().st_size
        wanted = self.headers.get("Range")
        if wanted is None:
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            if not head:
                self._copy(target, 0, size)
            return
        match = _RANGE.match(wanted.strip())
        if match is None or match.group(1) == match.group(2) == "":
            self._plain(400, "bad range")
            return
        first, last = match.group(1), match.group(2)
        if first == "":  # a suffix range: the last N bytes
            start, end = max(0, size - int(last)), size - 1
        else:
            start, end = int(first), min(size - 1, int(last)) if last else size - 1
        if start >= size:
            self._plain(416, "", extra={"Content-Range": f"bytes */{size}"})
            return
        self.send_response(206)
        total = str(size) if total_known else "*"
        self.send_header("Content-Range", f"bytes {start}-{end}/{total}")
        if total_known:
            self.send_header("Content-Length", str(end - start + 1))
        else:
            self.close_connection = True  # the body ends when the connection does
            self.send_header("Connection", "close")
        self.end_headers()
        if not head:
            self._copy(target, start, end + 1 - start)

    def _serve_whole(self, rel: str, *, head: bool) -> None:
        target = self._file(rel)
        if target is None:
            return
        size = target.stat().st_size
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        if not head:
            self._copy(target, 0, size)

    def _serve_lie(self, rel: str) -> None:
        target = self._file(rel)
        if target is None:
            return
        size = target.stat().st_size
        match = _RANGE.match((self.headers.get("Range") or "").strip())
        start = int(match.group(1)) if match and match.group(1) else 0
        end = min(size - 1, int(match.group(2))) if match and match.group(2) else size - 1
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Connection", "close")
        self.end_headers()
        self._copy(target, start, (end + 1 - start) // 2)
        self.close_connection = True

    def _copy(self, target: Path, start: int, length: int) -> None:
        with target.open("rb") as f:
            f.seek(start)
            while length > 0:
                chunk = f.read(min(length, 64 * 1024))
                if not chunk:
                    break
                # Counted before the write: the client may act on the bytes before it returns.
                self.server.log.sent(len(chunk))
                try:
                    self.wfile.write(chunk)
                    self.wfile.flush()
                except OSError:  # the client hung up (as it should on a Range-ignoring server)
                    self.close_connection = True
                    return
                length -= len(chunk)

    def _plain(self, status: int, text: str, extra: dict[str, str] | None = None) -> None:
        body = text.encode()
        self.send_response(status)
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.server.log.sent(len(body))
            self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    # -- the fake hub --------------------------------------------------------------------------

    def _repo(self, org: str, name: str) -> Path | None:
        folder = self.server.root / "hub" / org / name
        if not folder.is_dir():
            self._hub_error(404, "RepoNotFound", f"Repository {org}/{name} not found")
            return None
        if (folder / ".private").exists() and self.headers.get(
            "Authorization"
        ) != f"Bearer {HUB_TOKEN}":
            self._hub_error(401, "RepoNotFound", "Invalid credentials")
            return None
        return folder

    def _hub_error(self, status: int, code: str, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _hub_api(self, path: str) -> None:
        match = re.fullmatch(r"/api/models/([^/]+)/([^/]+)(?:/revision/([^/]+))?", path)
        if match is None:
            self._plain(404, "not found")
            return
        org, name, revision = match.group(1), match.group(2), unquote(match.group(3) or "main")
        folder = self._repo(org, name)
        if folder is None:
            return
        if revision not in ("main", _sha(folder)):
            self._hub_error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return
        files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
        document = {
            "id": f"{org}/{name}",
            "modelId": f"{org}/{name}",
            "sha": _sha(folder),
            "private": (folder / ".private").exists(),
            "siblings": [
                {"rfilename": p.relative_to(folder).as_posix(), "size": p.stat().st_size}
                for p in files
            ],
        }
        body = json.dumps(document).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.server.log.sent(len(body))
        self.wfile.write(body)

    def _hub_resolve(self, path: str, *, head: bool) -> None:
        match = re.fullmatch(r"/([^/]+)/([^/]+)/resolve/([^/]+)/(.+)", path)
        if match is None:
            self._plain(404, "not found")
            return
        org, name, revision, file = match.groups()
        folder = self._repo(org, name)
        if folder is None:
            return
        if unquote(revision) not in ("main", _sha(folder)):
            self._hub_error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return
        rel = f"hub/{org}/{name}/{file}"
        if file.endswith(".safetensors"):  # large files live on another host, as on the hub
            self._redirect(f"{self.server.cdn_base}/files/{rel}")
        else:
            self._serve_file(unquote(rel), head=head)


def _sha(folder: Path) -> str:
    return hashlib.sha1(folder.as_posix().encode()).hexdigest()


@dataclass
class LocalServers:
    """The running servers: `base` (127.0.0.1), `cdn` (127.0.0.2), their shared log and root."""

    base: str
    cdn: str
    root: Path
    log: ServedLog


def repo_sha(root: Path, org: str, name: str) -> str:
    """The commit sha the fake hub reports for a repository."""
    return _sha(root / "hub" / org / name)


def serve(root: Path) -> Iterator[LocalServers]:
    """Run both servers over `root` for the duration of the generator (a pytest fixture body)."""
    log = ServedLog()
    stop = threading.Event()
    main = _Server("127.0.0.1", root, log, stop)
    cdn = _Server("127.0.0.2", root, log, stop)
    base = f"http://127.0.0.1:{main.server_address[1]}"
    cdn_base = f"http://127.0.0.2:{cdn.server_address[1]}"
    main.cdn_base = cdn.cdn_base = cdn_base
    threads = [
        threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        for s in (main, cdn)
    ]
    for t in threads:
        t.start()
    try:
        yield LocalServers(base, cdn_base, root, log)
    finally:
        stop.set()
        for s in (main, cdn):
            s.shutdown()
            s.server_close()
