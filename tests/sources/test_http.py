"""Range reads against the local servers: cost, and every misbehaving server."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdlint.formats.safetensors import parse_header
from sdlint.sources.http import (
    SPECULATIVE_READ,
    HttpClient,
    HttpError,
    RemoteReader,
    env_tokens,
    redact,
)
from tests.cli_helpers import TENSORS
from tests.http_server import LocalServers
from tests.safetensors_files import header_for, write_raw
from tests.sources.conftest import SPARSE_SIZE, many_tensors, sparse_checkpoint


def client(**kwargs: object) -> HttpClient:
    settings: dict[str, object] = {"timeout": 2.0, "retries": 2, "tokens": {}, "sleep": _no_sleep}
    settings.update(kwargs)
    return HttpClient(**settings)  # type: ignore[arg-type]


def _no_sleep(seconds: float) -> None:
    pass


def small_file(servers: LocalServers) -> Path:
    header, size = header_for(TENSORS)
    return write_raw(servers.root / "model.safetensors", header, b"\0" * size)


def read_header_bytes(http: HttpClient, url: str) -> tuple[bytes, int | None]:
    reader = RemoteReader(http, url)
    n = int.from_bytes(reader.read(0, 8), "little")
    return reader.read(8, n), reader.size


def test_small_file_costs_one_request_of_its_size(servers: LocalServers) -> None:
    header, size = header_for(TENSORS)
    path = write_raw(servers.root / "model.safetensors", header, b"\0" * size)
    http = client()
    raw, file_size = read_header_bytes(http, f"{servers.base}/files/model.safetensors")
    parsed = parse_header(raw, file_size=file_size)
    assert [e.name for e in parsed.entries] == list(TENSORS)  # type: ignore[union-attr]
    assert file_size == path.stat().st_size
    assert http.cost.requests == 1 and len(servers.log.requests) == 1
    assert servers.log.body_bytes == http.cost.bytes == path.stat().st_size
    assert servers.log.requests[0].range == f"bytes=0-{SPECULATIVE_READ - 1}"


def test_140_gb_sparse_file_costs_a_few_kb(servers: LocalServers) -> None:
    path = sparse_checkpoint(servers.root / "big.safetensors")
    http = client()
    raw, file_size = read_header_bytes(http, f"{servers.base}/files/big.safetensors")
    assert file_size == SPARSE_SIZE == path.stat().st_size
    parsed = parse_header(raw, file_size=file_size)
    assert [e.name for e in parsed.entries] == ["embed.weight"]  # type: ignore[union-attr]
    assert len(servers.log.requests) == 1
    assert servers.log.body_bytes == SPECULATIVE_READ < 20_000


def test_a_long_header_costs_a_second_request_for_the_rest_only(servers: LocalServers) -> None:
    path = many_tensors(servers.root / "long.safetensors", 2000)
    n = int.from_bytes(path.read_bytes()[:8], "little")
    assert n > SPECULATIVE_READ
    http = client()
    raw, _ = read_header_bytes(http, f"{servers.base}/files/long.safetensors")
    assert raw == path.read_bytes()[8 : 8 + n]
    assert [r.range for r in servers.log.requests] == [
        f"bytes=0-{SPECULATIVE_READ - 1}",
        f"bytes={SPECULATIVE_READ}-{8 + n - 1}",
    ]
    assert servers.log.body_bytes == 8 + n  # the header and not one byte of data


def test_a_server_ignoring_range_is_cut_off_not_downloaded(servers: LocalServers) -> None:
    sparse_checkpoint(servers.root / "big.safetensors", size=10**9)
    http = client()
    with pytest.raises(HttpError, match=r"ignores HTTP Range requests.*1,000,000,000 bytes"):
        RemoteReader(http, f"{servers.base}/norange/big.safetensors")
    assert http.cost.bytes == 0
    # The server pushes into socket buffers before it sees the hang-up: a few MB at most.
    assert servers.log.body_bytes < 10**9 // 100


def test_a_stalled_server_times_out(servers: LocalServers) -> None:
    small_file(servers)
    with pytest.raises(HttpError, match=r"no answer from 127\.0\.0\.1:\d+ within 0\.3 s"):
        RemoteReader(client(timeout=0.3), f"{servers.base}/stall/model.safetensors")


def test_a_server_sending_less_than_announced_is_an_error(servers: LocalServers) -> None:
    size = small_file(servers).stat().st_size
    with pytest.raises(HttpError, match=f"announced {size} bytes but sent {size // 2}"):
        RemoteReader(client(), f"{servers.base}/lie/model.safetensors")


def test_no_size_from_the_server_leaves_the_size_unknown(servers: LocalServers) -> None:
    sparse_checkpoint(servers.root / "big.safetensors", size=10**6)
    reader = RemoteReader(client(), f"{servers.base}/nosize/big.safetensors")
    assert reader.size is None


def test_429_and_5xx_are_retried_with_backoff(servers: LocalServers) -> None:
    size = small_file(servers).stat().st_size
    servers.log.flaky_failures = 2
    waits: list[float] = []
    http = client(sleep=waits.append)
    reader = RemoteReader(http, f"{servers.base}/flaky/model.safetensors")
    assert reader.size == size
    assert waits == [0.0, 0.0]  # the server's Retry-After: 0
    assert http.cost.requests == 3


def test_retries_give_up_with_the_status(servers: LocalServers) -> None:
    small_file(servers)
    servers.log.flaky_failures = 5
    with pytest.raises(HttpError, match="HTTP 503"):
        RemoteReader(client(retries=2), f"{servers.base}/flaky/model.safetensors")
    assert len(servers.log.requests) == 3


def test_missing_file_is_a_404(servers: LocalServers) -> None:
    with pytest.raises(HttpError, match="HTTP 404 Not Found"):
        RemoteReader(client(), f"{servers.base}/files/nothing.safetensors")


def test_token_goes_to_its_host_only_and_is_dropped_on_redirect(servers: LocalServers) -> None:
    size = small_file(servers).stat().st_size
    host = servers.base.removeprefix("http://")
    http = client(tokens={host: "secret-token"})
    reader = RemoteReader(http, f"{servers.base}/redirect/model.safetensors")
    assert reader.size == size
    first, second = servers.log.requests
    assert (first.host, first.authorization) == ("127.0.0.1", "Bearer secret-token")
    assert (second.host, second.authorization) == ("127.0.0.2", None)
    assert second.range == first.range


def test_env_token_is_bound_to_the_hub_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_x")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:8080/")
    assert env_tokens() == {"127.0.0.1:8080": "hf_x"}
    monkeypatch.delenv("HF_ENDPOINT")
    assert env_tokens() == {"huggingface.co": "hf_x"}
    monkeypatch.delenv("HF_TOKEN")
    assert env_tokens() == {}


def test_redact_drops_credentials_and_query() -> None:
    assert (
        redact("https://user:pw@cdn.example/a/b.safetensors?X-Amz-Signature=abc")
        == "https://cdn.example/a/b.safetensors"
    )


def test_concurrency_is_limited_per_client(servers: LocalServers) -> None:
    import threading

    small_file(servers)
    http = client(jobs=2)
    active = 0
    peak = 0
    lock = threading.Lock()
    original = http._send

    def counting(*args: object, **kwargs: object) -> object:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        try:
            return original(*args, **kwargs)  # type: ignore[arg-type]
        finally:
            with lock:
                active -= 1

    http._send = counting  # type: ignore[method-assign,assignment]
    threads = [
        threading.Thread(
            target=RemoteReader, args=(http, f"{servers.base}/files/model.safetensors")
        )
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert http.cost.requests == 8
    assert peak <= 2


def test_a_second_read_goes_where_the_first_was_redirected(servers: LocalServers) -> None:
    path = many_tensors(servers.root / "long.safetensors", 2000)
    n = int.from_bytes(path.read_bytes()[:8], "little")
    host = servers.base.removeprefix("http://")
    http = client(tokens={host: "secret-token"})
    raw, _ = read_header_bytes(http, f"{servers.base}/redirect/long.safetensors")
    assert raw == path.read_bytes()[8 : 8 + n]
    assert [(r.host, r.path, r.authorization) for r in servers.log.requests] == [
        ("127.0.0.1", "/redirect/long.safetensors", "Bearer secret-token"),
        ("127.0.0.2", "/files/long.safetensors", None),
        ("127.0.0.2", "/files/long.safetensors", None),  # no second trip through the redirect
    ]
