"""What one run looks up again and again, looked up once per run.

A run over 200 checkpoints in one tree asks 200 times for the configuration file nearest to
folders that share their parents, lists the same folders for each suffix, and decodes the same
few verdicts from the cache. Inside `run()` (one `check_paths` call), such a lookup keeps its
answers in a table of its own (`table`); outside it (a library caller, a worker process started
without one) every call looks again. A run sees the files as they were when it first looked, as
it does when each is read once; the next run looks again. A lookup that records its dependency
for the run cache (`sdlint.runcache.depend`) records it when it looks, so that stays complete.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar

TYPE_CHECKING = False  # typing is not imported at run time (a check has no use for it)
if TYPE_CHECKING:
    from typing import Any, TypeVar

    _T = TypeVar("_T")

_tables: ContextVar[dict[str, dict[Any, Any]] | None] = ContextVar("sdlint_memo", default=None)


@contextlib.contextmanager
def run() -> Iterator[None]:
    """The block is one run: lookups made in it are remembered until it ends."""
    token = _tables.set({})
    try:
        yield
    finally:
        _tables.reset(token)


def table(name: str) -> dict[Any, Any] | None:
    """The run's table for the lookup `name`; None outside a run (nothing is remembered)."""
    tables = _tables.get()
    if tables is None:
        return None
    found = tables.get(name)
    if found is None:
        found = tables[name] = {}
    return found


def by_identity(name: str, objects: tuple[object, ...], compute: Callable[[], _T]) -> _T:
    """`compute()`, once per run for these very objects (by identity: objects shared by many
    checkpoints, such as the entries of identical headers, share the answer). The objects are kept
    with the answer, so their ids are not reused while the run lasts."""
    known = table(name)
    if known is None:
        return compute()
    ident = tuple(map(id, objects))
    found = known.get(ident)
    if found is None or any(a is not b for a, b in zip(found[0], objects, strict=True)):
        found = known[ident] = (objects, compute())
    answer: _T = found[1]
    return answer
