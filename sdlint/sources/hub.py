"""`hf://ORG/NAME[@REVISION][/PATH]`: a Hugging Face Hub model repository, listed through
huggingface_hub and read by range requests (sdlint/sources/http.py).

huggingface_hub is used for what it owns: the endpoint (`HF_ENDPOINT`), the token (`HF_TOKEN` or
the saved login), offline mode (`HF_HUB_OFFLINE`), the repository listing (`model_info` with file
sizes, one request) and the file URLs (`hf_hub_url`, pinned to the commit the listing came from so
every file is read at one revision). It is imported only here, only for `hf://`: it is not a core
dependency of sdlint (it comes with transformers), and it costs ~0.7 s to import.

Environment settings are read when a repository is resolved, not when huggingface_hub was first
imported (its `constants` are frozen at import).
"""

from __future__ import annotations

import os
from urllib.parse import quote, unquote

from sdlint import __version__
from sdlint.errors import UsageError
from sdlint.record import record
from sdlint.sources.http import host_of

SCHEME = "hf://"
_DEFAULT_ENDPOINT = "https://huggingface.co"
_TRUE = {"1", "ON", "YES", "TRUE"}


def is_hub(text: str) -> bool:
    return text.startswith(SCHEME)


@record
class HubPath:
    """`hf://ORG/NAME[@REVISION][/PATH]` taken apart."""

    repo_id: str
    revision: str | None
    path: str  # "" for the whole repository

    @property
    def display(self) -> str:
        at = f"@{self.revision}" if self.revision else ""
        tail = f"/{self.path}" if self.path else ""
        return f"{SCHEME}{self.repo_id}{at}{tail}"


def parse_hub_path(text: str) -> HubPath:
    """Raises UsageError for anything but `hf://ORG/NAME[@REVISION][/PATH]`. A revision with a
    slash (`refs/pr/1`) is written URL-encoded: `@refs%2Fpr%2F1`."""
    rest = text[len(SCHEME) :] if is_hub(text) else text
    parts = rest.split("/")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise UsageError(f"{text}: expected hf://ORG/NAME[@REVISION] (a model repository)")
    org, name = parts[0], parts[1]
    revision = None
    if "@" in name:
        name, _, revision = name.partition("@")
        revision = unquote(revision) or None
    if org in ("datasets", "spaces"):
        raise UsageError(f"{text}: only model repositories can be checked")
    return HubPath(f"{org}/{name}", revision, "/".join(p for p in parts[2:] if p))


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or _DEFAULT_ENDPOINT).rstrip("/")


def offline() -> bool:
    return any(
        (os.environ.get(name) or "").upper() in _TRUE
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


@record
class HubRepo:
    """A repository at one commit: its files and their sizes (None when the hub did not say)."""

    repo_id: str
    revision: str | None  # as asked for (None: the default branch)
    sha: str  # the commit every file is read at
    endpoint: str
    files: dict[str, int | None]

    def url(self, path: str) -> str:
        return f"{self.endpoint}/{self.repo_id}/resolve/{self.sha}/{quote(path)}"

    def display(self, path: str = "") -> str:
        return HubPath(self.repo_id, self.revision, path).display


def hub_tokens() -> dict[str, str]:
    """The hub token (huggingface_hub's: HF_TOKEN, else the saved login) bound to the hub's host;
    a redirect to the CDN's host drops it."""
    from huggingface_hub import get_token

    token = get_token()
    return {host_of(endpoint()): token} if token else {}


def resolve_repo(spec: HubPath, *, timeout: float = 20.0) -> HubRepo:
    """List the repository through the hub's API (one request). Raises UsageError with the hub's
    reason when it cannot be listed; the token is never part of a message."""
    where = HubPath(spec.repo_id, spec.revision, "").display
    if offline():
        raise UsageError(
            f"{where}: HF_HUB_OFFLINE is set, and checking a hub repository needs the network "
            "(sdlint reads its headers by range requests, it does not use the local cache)"
        )
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    base = endpoint()
    api = HfApi(endpoint=base, library_name="sdlint", library_version=__version__)
    try:
        info = api.model_info(
            spec.repo_id, revision=spec.revision, files_metadata=True, timeout=timeout
        )
    except GatedRepoError as e:
        raise UsageError(f"{where}: gated repository; set HF_TOKEN with access to it") from e
    except RepositoryNotFoundError as e:
        raise UsageError(
            f"{where}: repository not found (or private: set HF_TOKEN) at {base}"
        ) from e
    except RevisionNotFoundError as e:
        raise UsageError(f"{where}: no revision {spec.revision!r}") from e
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else "?"
        raise UsageError(f"{where}: the hub answered HTTP {status} at {base}") from e
    except (OSError, ValueError) as e:  # connection errors (httpx's are OSError subclasses too)
        raise UsageError(f"{where}: cannot reach {base}: {type(e).__name__}") from e
    except Exception as e:  # httpx transport errors are not OSErrors
        if type(e).__module__.startswith("httpx"):
            raise UsageError(f"{where}: cannot reach {base}: {type(e).__name__}") from e
        raise
    files = {s.rfilename: s.size for s in info.siblings or ()}
    return HubRepo(spec.repo_id, spec.revision, info.sha or spec.revision or "main", base, files)
