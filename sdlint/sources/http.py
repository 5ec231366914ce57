"""Files behind an HTTP(S) URL, read by range requests: a header costs one or two requests and a few
kilobytes, whatever the size of the file.

Why the standard library (http.client) and not huggingface_hub's session (httpx): the reads here
need three things a plain session does not give without the same amount of code: a hard byte
budget on a response (a server that ignores `Range` starts sending 140 GB; we read the budget and
hang up), a token bound to one host across redirects (dropped when a redirect leaves the host, as
huggingface_hub does), and an exact count of requests and bytes for the cost report. It also keeps
`sdlint check https://...` free of heavy imports: huggingface_hub costs ~0.7 s to import and is
imported only for `hf://` (sdlint/sources/hub.py), where its endpoint, token and offline settings
and its repository listing are what we want.

One `HttpClient` per run: its semaphore is the run's concurrency limit (`--jobs`), its counters the
run's cost. Failures are `HttpError`s with a one-line reason that never contains a token.
"""

from __future__ import annotations

import http.client
import os
import random
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import urljoin, urlsplit, urlunsplit

from sdlint import __version__
from sdlint.record import field, record
from sdlint.sources import ReadError

# The first read of a file asks for this many bytes: the 8-byte length and, usually, the whole
# header, in one request. huggingface_hub's `get_safetensors_metadata` asks for 100,000 bytes; we
# ask for 16 KiB so that a file with a small header costs a few KB (what follows the header is
# waste), at the price of a second request for headers over ~150 tensors (~100 bytes of JSON each).
SPECULATIVE_READ = 16_384
MAX_REDIRECTS = 5
_RETRY_STATUSES = {429, 500, 502, 503, 504}
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$")
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)\s*$")
_CHUNK = 64 * 1024


class HttpError(ReadError):
    """A remote file cannot be read; `reason` is one line, free of tokens and signed query
    strings (the caller names the file)."""

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        super().__init__(reason, missing="HTTP 404" if status == 404 else None)
        self.status = status


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def redact(url: str) -> str:
    """A URL as it may be shown: no user info, no query (signed CDN URLs carry credentials)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def host_of(url: str) -> str:
    """`host[:port]`, lower case: the unit a token is bound to."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return f"{host}:{parts.port}" if parts.port else host


def env_tokens() -> dict[str, str]:
    """Tokens from the environment, each bound to its own host: `HF_TOKEN` (or
    `HUGGING_FACE_HUB_TOKEN`) to the hub's host, `HF_ENDPOINT` or huggingface.co."""
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if not token:
        return {}
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    return {host_of(endpoint): token}


@record(frozen=False)
class Cost:
    """What a run asked of the servers: requests sent and body bytes received."""

    requests: int = 0
    bytes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, requests: int = 0, nbytes: int = 0) -> None:
        with self.lock:
            self.requests += requests
            self.bytes += nbytes


@record
class Chunk:
    """The answer to a range read: `data` starts at the requested offset. `size` is the file's
    size when the server said it (Content-Range, else Content-Length of a whole-file answer)."""

    data: bytes
    size: int | None
    url: str  # after redirects, with its query: may carry a CDN signature, never show it


@record(frozen=False)
class HttpClient:
    """Range reads with timeouts, retries with backoff on 429/5xx, redirects (a token is sent
    only to its own host), a concurrency limit and a cost counter."""

    jobs: int = 4
    # seconds for a connection, and for a whole response body; SDLINT_HTTP_TIMEOUT overrides
    timeout: float = field(default_factory=lambda: _env_float("SDLINT_HTTP_TIMEOUT", 20.0))
    retries: int = 3
    backoff: float = 0.5  # seconds before the first retry, doubling
    tokens: Mapping[str, str] = field(default_factory=env_tokens)  # host -> bearer token
    cost: Cost = field(default_factory=Cost)
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        self._slots = threading.BoundedSemaphore(max(1, self.jobs))

    # -- the two reads sdlint makes -----------------------------------------------------------

    def read_range(self, url: str, start: int, length: int) -> Chunk:
        """Bytes [start, start + length) of the file (fewer at its end). A server that ignores
        `Range` is cut off after `length` bytes and reported, never read to the end."""
        if length <= 0:
            return Chunk(b"", None, url)
        headers = {"Range": f"bytes={start}-{start + length - 1}"}
        with self._request(url, headers) as (response, final):
            if response.status == 416:
                unsatisfied = _UNSATISFIED_RANGE.match(response.getheader("Content-Range") or "")
                size = int(unsatisfied.group(1)) if unsatisfied else None
                return Chunk(b"", size, final)
            if response.status == 200:
                announced = _content_length(response)
                total = f" of {announced:,} bytes" if announced is not None else ""
                raise HttpError(
                    f"the server ignores HTTP Range requests and started sending the whole "
                    f"file{total}; sdlint hung up instead of downloading it"
                )
            if response.status != 206:
                raise _status_error(response)
            content_range = _CONTENT_RANGE.match(response.getheader("Content-Range") or "")
            if content_range is None:
                raise HttpError("the server answered a range request without a Content-Range")
            first, last = int(content_range.group(1)), int(content_range.group(2))
            if first != start or last > start + length - 1 or last < first:
                raise HttpError(
                    f"the server answered bytes {first}-{last} to a request for bytes "
                    f"{start}-{start + length - 1}"
                )
            size = None if content_range.group(3) == "*" else int(content_range.group(3))
            expected = last - first + 1
            data = self._body(response, expected)
            if len(data) < expected:
                raise HttpError(
                    f"the server announced {expected:,} bytes but sent {len(data):,} and closed "
                    "the connection"
                )
            return Chunk(data, size, final)

    def read_whole(self, url: str, limit: int) -> bytes:
        """A small file (config.json, an index) whole, refused when larger than `limit`."""
        with self._request(url, {}) as (response, _):
            if response.status != 200:
                raise _status_error(response)
            announced = _content_length(response)
            if announced is not None and announced > limit:
                raise HttpError(f"the file is {announced:,} bytes, more than the {limit:,} limit")
            data = self._body(response, limit + 1)
            if len(data) > limit:
                raise HttpError(f"the file is more than the {limit:,}-byte limit")
            if announced is not None and len(data) < announced:
                raise HttpError(
                    f"the server announced {announced:,} bytes but sent {len(data):,} and closed "
                    "the connection"
                )
            return data

    # -- one request: redirects, retries, the concurrency slot --------------------------------

    @contextmanager
    def _request(
        self, url: str, headers: Mapping[str, str]
    ) -> Iterator[tuple[http.client.HTTPResponse, str]]:
        with self._slots:
            attempt = 0
            while True:
                connection, response, final = self._follow(url, headers)
                if response.status in _RETRY_STATUSES and attempt < self.retries:
                    delay = _retry_after(response)
                    connection.close()
                    if delay is None:
                        delay = self.backoff * 2**attempt * (1 + random.random() / 4)
                    self.sleep(min(delay, 60.0))
                    attempt += 1
                    continue
                try:
                    yield response, final
                finally:
                    connection.close()
                return

    def _follow(
        self, url: str, headers: Mapping[str, str]
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse, str]:
        for _ in range(MAX_REDIRECTS + 1):
            connection, response = self._send(url, headers)
            location = response.getheader("Location")
            if response.status not in (301, 302, 303, 307, 308) or not location:
                return connection, response, url
            connection.close()
            url = urljoin(url, location)
            if not is_url(url):
                raise HttpError(f"the server redirected to a non-HTTP address ({redact(url)})")
        raise HttpError(f"more than {MAX_REDIRECTS} redirects")

    def _send(
        self, url: str, headers: Mapping[str, str]
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        parts = urlsplit(url)
        host = parts.hostname or ""
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            connection = http.client.HTTPSConnection(
                host, parts.port, timeout=self.timeout, context=ssl.create_default_context()
            )
        else:
            connection = http.client.HTTPConnection(host, parts.port, timeout=self.timeout)
        target = parts.path or "/"
        if parts.query:
            target += f"?{parts.query}"
        sent = {
            "User-Agent": f"sdlint/{__version__}",
            "Accept-Encoding": "identity",  # byte offsets must be offsets into the file
            **headers,
        }
        token = self.tokens.get(host_of(url))  # per hop: a redirect to another host drops it
        if token:
            sent["Authorization"] = f"Bearer {token}"
        self.cost.add(requests=1)
        try:
            connection.request("GET", target, headers=sent)
            response = connection.getresponse()
        except TimeoutError as e:
            connection.close()
            raise HttpError(f"no answer from {host_of(url)} within {self.timeout:g} s") from e
        except (OSError, http.client.HTTPException) as e:
            connection.close()
            raise HttpError(f"cannot reach {host_of(url)}: {_os_reason(e)}") from e
        return connection, response

    def _body(self, response: http.client.HTTPResponse, at_most: int) -> bytes:
        """At most `at_most` bytes of the body, within the timeout for the whole body (a server
        that trickles one byte at a time does not hold the run)."""
        deadline = time.monotonic() + self.timeout
        chunks: list[bytes] = []
        received = 0
        try:
            while received < at_most:
                if time.monotonic() > deadline:
                    raise HttpError(f"the response took longer than {self.timeout:g} s")
                chunk = response.read1(min(_CHUNK, at_most - received))
                if not chunk:
                    break
                chunks.append(chunk)
                received += len(chunk)
                self.cost.add(nbytes=len(chunk))
        except TimeoutError as e:
            raise HttpError(f"the server stopped sending for {self.timeout:g} s") from e
        except (OSError, http.client.HTTPException) as e:
            raise HttpError(
                f"the connection failed after {received:,} bytes: {_os_reason(e)}"
            ) from e
        return b"".join(chunks)


def _env_float(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value > 0 else default


def _content_length(response: http.client.HTTPResponse) -> int | None:
    value = response.getheader("Content-Length")
    return int(value) if value is not None and value.strip().isdigit() else None


def _retry_after(response: http.client.HTTPResponse) -> float | None:
    value = (response.getheader("Retry-After") or "").strip()
    return float(value) if value.isdigit() else None


def _status_error(response: http.client.HTTPResponse) -> HttpError:
    status = response.status
    hints = {
        401: " (a private or gated file: set HF_TOKEN for the hub)",
        403: " (access denied)",
        404: " (no such file)",
    }
    reason = response.reason or ""
    return HttpError(f"HTTP {status} {reason}{hints.get(status, '')}".strip(), status=status)


def _os_reason(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__


class RemoteReader:
    """An open remote file for the header reader: the first read fetches `SPECULATIVE_READ`
    bytes, later reads inside them cost nothing, a read past them fetches only what is missing."""

    def __init__(self, client: HttpClient, url: str) -> None:
        self._client = client
        first = client.read_range(url, 0, SPECULATIVE_READ)
        # Later reads go where the first was redirected (the hub's CDN): one request, not two.
        self._url = first.url
        self._head = first.data
        self.size = first.size
        # fewer bytes than asked for and no size: the file ended there
        if self.size is None and len(self._head) < SPECULATIVE_READ:
            self.size = len(self._head)

    def read(self, offset: int, length: int) -> bytes:
        end = offset + length
        if end <= len(self._head) or (self.size is not None and len(self._head) >= self.size):
            return self._head[offset:end]
        if offset < len(self._head):
            tail = self._client.read_range(self._url, len(self._head), end - len(self._head))
            return self._head[offset:] + tail.data
        return self._client.read_range(self._url, offset, length).data
