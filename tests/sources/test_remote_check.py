"""`sdlint check https://...` and `sdlint check hf://...` against the local servers, with the bytes
they cost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_helpers import TENSORS, run
from tests.http_server import HUB_TOKEN, LocalServers
from tests.safetensors_files import header_for, write_raw
from tests.sources.conftest import many_tensors, sparse_checkpoint

pytestmark = pytest.mark.usefixtures("hub")  # HF_ENDPOINT on the fake hub, no token, online


def two_shards(folder: Path, *, lose_second: bool = False, variant: str = "") -> None:
    """model-0000{1,2}-of-00002.safetensors with their index; optionally the second shard lost.
    With a `variant`, as `save_pretrained(variant=...)` names them:
    model.fp16-00001-of-00002.safetensors, model.safetensors.index.fp16.json."""
    stem = f"model.{variant}" if variant else "model"
    shards: dict[str, dict[str, tuple[str, tuple[int, ...]]]] = {
        f"{stem}-00001-of-00002.safetensors": {"a.weight": ("F32", (2, 2))},
        f"{stem}-00002-of-00002.safetensors": {"b.weight": ("F32", (2,))},
    }
    weight_map: dict[str, str] = {}
    total = 0
    for name, tensors in shards.items():
        header, size = header_for(tensors)
        write_raw(folder / name, header, b"\0" * size)
        weight_map.update(dict.fromkeys(tensors, name))
        total += size
    index = f"model.safetensors.index.{variant}.json" if variant else "model.safetensors.index.json"
    (folder / index).write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map})
    )
    if lose_second:
        (folder / f"{stem}-00002-of-00002.safetensors").unlink()


def test_url_of_a_clean_file(servers: LocalServers, capsys: pytest.CaptureFixture[str]) -> None:
    header, size = header_for(TENSORS)
    write_raw(servers.root / "m" / "model.safetensors", header, b"\0" * size)
    code, out, _ = run(capsys, "check", f"{servers.base}/files/m/model.safetensors")
    assert code == 0 and out.endswith("All checks passed (1 file checked).\n")
    assert len(servers.log.requests) == 1


def test_url_of_a_140_gb_file_costs_a_few_kb(
    servers: LocalServers, capsys: pytest.CaptureFixture[str]
) -> None:
    sparse_checkpoint(servers.root / "big.safetensors")
    code, out, _ = run(capsys, "check", "-q", f"{servers.base}/files/big.safetensors")
    assert (code, out) == (0, "")
    assert len(servers.log.requests) == 1
    assert servers.log.body_bytes <= 16_384


def test_truncated_remote_file_is_sd003_with_its_url(
    servers: LocalServers, capsys: pytest.CaptureFixture[str]
) -> None:
    header, size = header_for(TENSORS)
    write_raw(servers.root / "model.safetensors", header, b"\0" * (size - 6))
    url = f"{servers.base}/files/model.safetensors"
    code, out, _ = run(capsys, "check", "-q", "--output-format", "json", url)
    findings = json.loads(out)
    assert code == 1
    assert [(f["code"], f["path"]) for f in findings] == [("SD003", url)]
    assert "6 bytes are missing" in findings[0]["message"]


def test_unknown_size_is_a_note_not_a_finding(
    servers: LocalServers, capsys: pytest.CaptureFixture[str]
) -> None:
    header, size = header_for(TENSORS)
    write_raw(servers.root / "model.safetensors", header, b"\0" * (size - 6))
    url = f"{servers.base}/nosize/model.safetensors"
    code, out, _ = run(capsys, "check", "-q", "--output-format", "json", url)
    findings = json.loads(out)
    # the whole file fits in the first read: its end is known, so is the truncation
    assert [(f["code"], f["severity"]) for f in findings] == [("SD003", "error")]
    sparse_checkpoint(servers.root / "big.safetensors", size=10**6)
    code, out, _ = run(
        capsys, "check", "-q", "--output-format", "json", f"{servers.base}/nosize/big.safetensors"
    )
    findings = json.loads(out)
    assert code == 0  # an info note never fails a run
    assert [(f["code"], f["severity"]) for f in findings] == [("SD003", "info")]
    assert "size" in findings[0]["message"] and "not checked" in findings[0]["message"]


def test_range_ignoring_server_is_reported_not_downloaded(
    servers: LocalServers, capsys: pytest.CaptureFixture[str]
) -> None:
    sparse_checkpoint(servers.root / "big.safetensors", size=10**9)
    url = f"{servers.base}/norange/big.safetensors"
    code, out, _ = run(capsys, "check", "-q", url)
    assert code == 1
    assert "SD001" in out and "ignores HTTP Range requests" in out
    assert servers.log.body_bytes < 10**7


def test_stalled_server_is_an_sd001_after_the_timeout(
    servers: LocalServers, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SDLINT_HTTP_TIMEOUT", "0.3")
    header, size = header_for(TENSORS)
    write_raw(servers.root / "model.safetensors", header, b"\0" * size)
    code, out, _ = run(capsys, "check", "-q", f"{servers.base}/stall/model.safetensors")
    assert code == 1 and "SD001" in out and "within 0.3 s" in out


def test_missing_url_is_a_usage_error(
    servers: LocalServers, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "check", f"{servers.base}/files/none.safetensors")
    assert code == 2 and "HTTP 404" in err


def test_index_url_reads_shards_relative_to_it(
    servers: LocalServers, capsys: pytest.CaptureFixture[str]
) -> None:
    two_shards(servers.root / "sharded")
    url = f"{servers.base}/files/sharded/model.safetensors.index.json"
    code, out, _ = run(capsys, "check", "-q", url)
    assert (code, out) == (0, "")
    assert sorted(r.path for r in servers.log.requests) == [
        "/files/sharded/model-00001-of-00002.safetensors",
        "/files/sharded/model-00002-of-00002.safetensors",
        "/files/sharded/model.safetensors.index.json",
    ]
    (servers.root / "sharded" / "model-00002-of-00002.safetensors").unlink()
    code, out, _ = run(capsys, "check", "-q", "--output-format", "json", url)
    findings = json.loads(out)
    assert code == 1
    assert {(f["code"], f["path"]) for f in findings} == {("SD004", url)}
    assert any("model-00002-of-00002.safetensors" in f["message"] for f in findings)


def test_fixes_are_refused_on_remote_paths(
    servers: LocalServers, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"{servers.base}/files/model.safetensors"
    for flag in ("--fix", "--diff"):
        code, _, err = run(capsys, "check", flag, url)
        assert code == 2 and "read-only" in err
    assert servers.log.requests == []


def test_hub_repository_checked_as_a_folder(
    hub: LocalServers, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = hub.root / "hub" / "org" / "sharded"
    two_shards(repo, lose_second=True)
    code, out, _ = run(capsys, "check", "-q", "--output-format", "json", "hf://org/sharded")
    findings = json.loads(out)
    assert code == 1
    assert {(f["code"], f["path"]) for f in findings} == {
        ("SD004", "hf://org/sharded/model.safetensors.index.json")
    }
    assert any("model-00002-of-00002.safetensors" in f["message"] for f in findings)
    # one listing, one index, one header (redirected to the CDN host); the lost shard costs no
    # request (the listing says it is not there): a few KB
    paths = [r.path for r in hub.log.requests]
    assert paths[0] == "/api/models/org/sharded"
    assert len(paths) == 1 + 1 + 2
    assert {r.host for r in hub.log.requests if r.path.startswith("/files/")} == {"127.0.0.2"}
    assert hub.log.body_bytes < 4_000


def test_hub_token_reaches_the_hub_never_the_cdn_nor_the_output(
    hub: LocalServers, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = hub.root / "hub" / "org" / "private"
    header, size = header_for(TENSORS)
    write_raw(repo / "model.safetensors", header, b"\0" * (size - 6))
    (repo / ".private").touch()
    code, _, err = run(capsys, "check", "hf://org/private")
    assert code == 2 and "set HF_TOKEN" in err
    monkeypatch.setenv("HF_TOKEN", HUB_TOKEN)
    code, out, err = run(capsys, "check", "-v", "hf://org/private")
    assert code == 1 and "SD003" in out
    assert HUB_TOKEN not in out + err
    by_host = {(r.host, r.authorization is not None) for r in hub.log.requests}
    assert ("127.0.0.2", True) not in by_host
    assert ("127.0.0.1", True) in by_host


def test_hub_revision(hub: LocalServers, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "-q", "--model-checks", "off", "hf://org/tiny@main")
    assert (code, out) == (0, "")
    code, _, err = run(capsys, "check", "-q", "hf://org/tiny@v2")
    assert code == 2 and "no revision 'v2'" in err


@pytest.mark.model
def test_model_checks_use_the_hub_config(
    hub: LocalServers, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The repository's config.json is the model the weights are checked against; --model-config
    takes an hf:// path or a URL too."""
    code, out, _ = run(capsys, "check", "-q", "--output-format", "json", "hf://org/tiny")
    findings = json.loads(out)
    assert code == 1
    unexpected = {f["tensor"] for f in findings if f["code"] == "SD104"}
    assert unexpected == {"classifier.weight", "classifier.bias"}  # BertModel has no head
    assert {f["path"] for f in findings} == {"hf://org/tiny/model.safetensors"}
    local = tmp_path / "local"
    header, size = header_for(TENSORS)
    write_raw(local / "model.safetensors", header, b"\0" * size)
    for config in ("hf://org/tiny", f"{hub.base}/org/tiny/resolve/main/config.json"):
        code, out, _ = run(
            capsys, "check", "-q", "--output-format", "json", "--model-config", config, str(local)
        )
        again = json.loads(out)
        assert {f["tensor"] for f in again if f["code"] == "SD104"} == unexpected


def test_jobs_keep_the_output_order(hub: LocalServers, capsys: pytest.CaptureFixture[str]) -> None:
    repo = hub.root / "hub" / "org" / "many"
    for i in range(6):
        header, size = header_for(TENSORS)
        write_raw(repo / f"sub{i}" / "model.safetensors", header, b"\0" * (size - i - 1))
    outputs = set()
    for jobs in ("1", "4"):
        code, out, _ = run(capsys, "check", "-q", "--jobs", jobs, "hf://org/many")
        assert code == 1
        outputs.add(out)
    (out,) = outputs
    assert [line.split(":1:1:")[0] for line in out.splitlines()[:6]] == [
        f"hf://org/many/sub{i}/model.safetensors" for i in range(6)
    ]


def test_long_header_costs_two_requests(
    servers: LocalServers, capsys: pytest.CaptureFixture[str]
) -> None:
    path = many_tensors(servers.root / "long.safetensors", 2000)
    code, _, _ = run(capsys, "check", "-q", f"{servers.base}/files/long.safetensors")
    assert code == 0
    n = int.from_bytes(path.read_bytes()[:8], "little")
    assert len(servers.log.requests) == 2 and servers.log.body_bytes == 8 + n


def test_index_shards_stay_beside_the_index(
    servers: LocalServers, capsys: pytest.CaptureFixture[str]
) -> None:
    """An index naming a shard on another host or outside its folder: refused, never requested."""
    folder = servers.root / "idx"
    two_shards(folder)
    header, size = header_for(TENSORS)
    write_raw(servers.root / "elsewhere.safetensors", header, b"\0" * size)
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    index["weight_map"]["b.weight"] = f"{servers.cdn}/files/elsewhere.safetensors"
    index["weight_map"]["c.weight"] = "../elsewhere.safetensors"
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    url = f"{servers.base}/files/idx/model.safetensors.index.json"
    code, out, _ = run(capsys, "check", "-q", "--output-format", "json", url)
    assert code == 1
    messages = " ".join(f["message"] for f in json.loads(out) if f["code"] == "SD004")
    assert "absolute path or URL" in messages and "`..`" in messages
    assert not any("elsewhere" in r.path for r in servers.log.requests)


@pytest.mark.slow
def test_a_remote_check_imports_nothing_heavy(servers: LocalServers) -> None:
    """`sdlint check https://...` needs neither torch, transformers nor huggingface_hub."""
    header, size = header_for(TENSORS)
    write_raw(servers.root / "model.safetensors", header, b"\0" * size)
    heavy = ("torch", "transformers", "numpy", "safetensors", "huggingface_hub", "httpx")
    script = (
        "import json, sys\n"
        "from sdlint.cli import main\n"
        "code = main(sys.argv[1:])\n"
        f"print(json.dumps({{'code': code, 'heavy': [m for m in {heavy!r} if m in sys.modules]}}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, "check", "-q", f"{servers.base}/files/model.safetensors"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"code": 0, "heavy": []}


@pytest.mark.model
def test_hub_adapter_checked_against_a_remote_base_config(
    hub: LocalServers, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A PEFT adapter on the hub: its Hub base model is never downloaded (a note), and a base
    config named by URL is fetched once and handed to peft as a local copy."""
    pytest.importorskip("peft")
    from tests.peft_adapters import edit_adapter_config, peft_config, save_adapter, save_base
    from tests.tiny_models import edit_config

    base = save_base(hub.root / "hub" / "org" / "base", num_labels=2)
    adapter = save_adapter(hub.root / "hub" / "org" / "lora", base, peft_config("lora"))
    edit_adapter_config(adapter, base_model_name_or_path="org/base")
    code, out, _ = run(capsys, "check", "hf://org/lora")
    assert code == 0 and "base_model_name_or_path is 'org/base'" in out
    edit_config(base / "config.json", id2label={str(i): f"L{i}" for i in range(5)})
    config = f"{hub.base}/org/base/resolve/main/config.json"
    code, out, err = run(
        capsys, "check", "--output-format", "json", "--model-config", config, "hf://org/lora"
    )
    assert err == ""
    findings = json.loads(out)
    assert code == 1 and [f["code"] for f in findings] == ["SD101", "SD101"]
    assert {f["path"] for f in findings} == {"hf://org/lora/adapter_model.safetensors"}


@pytest.mark.model
def test_a_remote_model_config_is_never_offered_a_fix(
    servers: LocalServers, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A local checkpoint checked against a config named by URL: SD101's fix would set the labels
    in the target config, which is remote; no fix is offered for it (it named the URL as a local
    path). Fixing the weights instead (--head-fix reinit) stays on offer: they are local."""
    import shutil

    examples = Path(__file__).parents[2] / "examples"
    weights = tmp_path / "roberta-2-labels"
    shutil.copytree(examples / "roberta-2-labels", weights)
    (weights / "config.json").unlink()
    shutil.copy(examples / "roberta-5-labels" / "config.json", servers.root / "config.json")
    url = f"{servers.base}/files/config.json"
    common = ("check", "--output-format", "json", "--model-config", url, str(weights))
    code, out, _ = run(capsys, *common)
    findings = json.loads(out)
    assert code == 1 and {f["code"] for f in findings} == {"SD101"}
    assert [f["fix"] for f in findings] == [None, None]
    code, out, _ = run(capsys, *common, "--head-fix", "reinit")
    findings = json.loads(out)
    assert {f["fix"]["applicability"] for f in findings} == {"unsafe"}


@pytest.mark.model
def test_verdicts_are_recorded_against_a_remote_model_config(
    servers: LocalServers,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`--record-verdicts` with `--model-config URL` records the verdict the check made against
    that config (it took the URL for a local path, read nothing there, and recorded none)."""
    import shutil

    monkeypatch.chdir(tmp_path)
    examples = Path(__file__).parents[2] / "examples"
    shutil.copytree(examples / "roberta-2-labels", "weights")
    shutil.copy(examples / "roberta-5-labels" / "config.json", servers.root / "config.json")
    url = f"{servers.base}/files/config.json"
    code, out, err = run(
        capsys, "check", "--record-verdicts", "shared", "--model-config", url, "weights"
    )
    assert code == 1 and "SD101" in out
    assert "Recorded 1 verdicts in shared" in err


def test_hub_index_named_alone_finds_its_shards(
    hub: LocalServers, capsys: pytest.CaptureFixture[str]
) -> None:
    """`hf://ORG/NAME/model.safetensors.index.json` is read with the shards beside it in the
    repository, as a local index is (every shard was reported missing)."""
    two_shards(hub.root / "hub" / "org" / "sharded")
    index = "hf://org/sharded/model.safetensors.index.json"
    code, out, _ = run(capsys, "check", "-q", "--model-checks", "off", index)
    assert (code, out) == (0, "")
    (hub.root / "hub" / "org" / "sharded" / "model-00002-of-00002.safetensors").unlink()
    code, out, _ = run(capsys, "check", "-q", "--output-format", "json", index)
    findings = json.loads(out)
    assert code == 1 and {(f["code"], f["path"]) for f in findings} == {("SD004", index)}
    assert all("model-00001" not in f["message"] for f in findings)


def test_a_variant_index_on_the_hub_or_at_a_url_is_one_checkpoint(
    hub: LocalServers, capsys: pytest.CaptureFixture[str]
) -> None:
    """`save_pretrained(variant="fp16")` names: the repository's listing, an index named alone in
    it, and an index URL all find the variant index with its shards (each shard was checked as
    a lone checkpoint, and the index named alone as a safetensors file)."""
    two_shards(hub.root / "hub" / "org" / "variant", lose_second=True, variant="fp16")
    two_shards(hub.root / "variant", lose_second=True, variant="fp16")
    index = "model.safetensors.index.fp16.json"
    for path in (
        "hf://org/variant",
        f"hf://org/variant/{index}",
        f"{hub.base}/files/variant/{index}",
    ):
        code, out, _ = run(capsys, "check", "-q", "--output-format", "json", path)
        findings = json.loads(out)
        where = path if path.endswith(index) else f"{path}/{index}"
        assert code == 1 and {(f["code"], f["path"]) for f in findings} == {("SD004", where)}
        assert any("model.fp16-00002-of-00002.safetensors" in f["message"] for f in findings)


@pytest.mark.parametrize("library", ["diffusers", "sentence-transformers"])
def test_a_hub_folder_of_another_library_is_recognised_as_a_local_one(
    hub: LocalServers, capsys: pytest.CaptureFixture[str], tmp_path: Path, library: str
) -> None:
    """A diffusers pipeline's components (model_index.json) and a sentence-transformers model's
    modules (modules.json) are known from the files beside their folders on the hub as on the
    disk: the same notes, not a model check of each config.json alone."""
    from tests.test_libraries import diffusers_pipeline, sentence_transformer

    build = diffusers_pipeline if library == "diffusers" else sentence_transformer
    build(tmp_path / "local")
    build(hub.root / "hub" / "org" / "other")
    outputs = []
    for path in (str(tmp_path / "local"), "hf://org/other"):
        code, out, err = run(capsys, "check", "--model-checks=cached", path)
        outputs.append((code, out.replace(path, "ROOT"), err))
    local, remote = outputs
    assert "is part of a diffusers pipeline" in local[1] or "sentence-transformers" in local[1]
    assert remote == local


def test_a_hub_file_from_pretrained_does_not_load_gets_a_note(
    hub: LocalServers, capsys: pytest.CaptureFixture[str]
) -> None:
    """Mistral's repositories: `consolidated.safetensors` beside the transformers shards is not
    judged against config.json, in the repository's listing and named alone, as on the disk."""
    repo = hub.root / "hub" / "org" / "mistral"
    two_shards(repo)
    (repo / "config.json").write_text(json.dumps({"model_type": "mistral"}))
    header, size = header_for({"layers.0.attention.wq.weight": ("F32", (2,))})
    write_raw(repo / "consolidated.safetensors", header, b"\0" * size)
    for path in ("hf://org/mistral", "hf://org/mistral/consolidated.safetensors"):
        code, out, _ = run(capsys, "check", "--model-checks=cached", path)
        assert code == 0
        assert (
            "note: model checks skipped for 1 checkpoint: from_pretrained loads another file of "
            "its folder instead (hf://org/mistral/consolidated.safetensors: "
            "model.safetensors.index.json is loaded)"
        ) in out.splitlines()
