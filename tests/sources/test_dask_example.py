"""examples/hub_scan_dask.py on a local Dask cluster of 2 worker processes against the fake hub."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tests.cli_helpers import TENSORS
from tests.http_server import LocalServers
from tests.safetensors_files import header_for, write_raw

pytest.importorskip("distributed")
EXAMPLE = Path(__file__).parent.parent.parent / "examples" / "hub_scan_dask.py"


@pytest.mark.slow
def test_scan_on_a_local_cluster(
    hub: LocalServers, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    header, size = header_for(TENSORS)
    for i in range(4):
        write_raw(
            hub.root / "hub" / "org" / f"m{i}" / "model.safetensors", header, b"\0" * (size - i)
        )
    spec = importlib.util.spec_from_file_location("hub_scan_dask", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(__import__("sys").modules, "hub_scan_dask", module)
    spec.loader.exec_module(module)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")  # the workers' huggingface_hub stays local
    repos = ["org/m3", "org/m0", "org/tiny", "org/missing", "org/m1", "org/m2"]
    code = module.main(["--workers", "2", *repos])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1
    assert [r["repo"] for r in lines] == repos  # the order given
    by_repo = {r["repo"]: r for r in lines}
    assert by_repo["org/m0"]["findings"] == [] and by_repo["org/tiny"]["findings"] == []
    assert "repository not found" in by_repo["org/missing"]["error"]
    for i in (1, 2, 3):
        (finding,) = by_repo[f"org/m{i}"]["findings"]
        assert finding["code"] == "SD003" and f"{i} bytes are missing" in finding["message"]
        assert finding["path"] == f"hf://org/m{i}/model.safetensors"
    listings = [r for r in hub.log.requests if r.path.startswith("/api/models/")]
    assert len(listings) == len(repos)  # each repository listed once, by some worker
