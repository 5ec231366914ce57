"""Lint many Hugging Face Hub repositories on a Dask cluster, headers only.

    pip install 'dask[distributed]'
    python examples/hub_scan_dask.py --workers 2 ORG/NAME ORG/NAME@REVISION ...
    python examples/hub_scan_dask.py --scheduler tcp://HOST:8786 --from-file repos.txt

A hub scan is a map of a pure function over repository names: `lint_repo` runs `sdlint check
hf://REPO` in process (range requests only; docs/remote.md has the cost per repository) and
returns plain data, so any engine that maps a function over a list distributes it. Each worker
reads `HF_ENDPOINT`/`HF_TOKEN` from its environment; `--jobs` bounds the requests in flight per
task, the number of workers the tasks at once. The output is one JSON line per repository, in the
order given, whatever order the workers finish in.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def lint_repo(repo: str, jobs: int = 8, model_checks: str = "off") -> dict[str, Any]:
    """`sdlint check hf://REPO`: its findings, or why the repository could not be checked."""
    from sdlint.engine import Settings, check_paths
    from sdlint.errors import SdlintError

    try:
        report = check_paths([f"hf://{repo}"], Settings(jobs=jobs, model_checks=model_checks))
    except SdlintError as e:
        return {"repo": repo, "error": str(e)}
    return {
        "repo": repo,
        "files": report.files_checked,
        "findings": [
            {"code": d.code, "severity": d.severity.value, "path": d.path, "message": d.message}
            for d in report.diagnostics
        ],
    }


def scan(client: Any, repos: Sequence[str], jobs: int, model_checks: str) -> list[dict[str, Any]]:
    """One task per repository on the cluster behind `client`; results in the order of `repos`."""

    def task(repo: str) -> dict[str, Any]:  # a closure: Dask ships it (and lint_repo) by value
        return lint_repo(repo, jobs, model_checks)

    futures = client.map(task, list(repos), pure=False)
    results: list[dict[str, Any]] = client.gather(futures)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repos", nargs="*", metavar="ORG/NAME[@REVISION]")
    parser.add_argument("--from-file", help="a file with one repository per line")
    parser.add_argument("--scheduler", help="a running Dask scheduler (default: a local cluster)")
    parser.add_argument("--workers", type=int, default=2, help="local cluster size (default: 2)")
    parser.add_argument("--jobs", type=int, default=8, help="requests in flight per repository")
    parser.add_argument("--model-checks", choices=("auto", "cached", "off"), default="off")
    args = parser.parse_args(argv)
    repos = list(args.repos)
    if args.from_file:
        with Path(args.from_file).open(encoding="utf-8") as f:
            repos += [line.strip() for line in f if line.strip() and not line.startswith("#")]

    import cloudpickle
    from dask.distributed import Client, LocalCluster

    # Workers cannot import this file by name: ship its functions by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    if args.scheduler:
        with Client(args.scheduler) as client:
            results = scan(client, repos, args.jobs, args.model_checks)
    else:
        with (
            LocalCluster(
                n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            results = scan(client, repos, args.jobs, args.model_checks)
    for result in results:
        sys.stdout.write(json.dumps(result) + "\n")
    return 1 if any(r.get("error") or r.get("findings") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
