"""Work items: the typed contract between whoever queues work and whoever runs it.

The mount, the CLI commands, the importer and the daemon's reconciler and
failover step queue work in the catalog's work queue; the daemon's workers
(daemon/workers.py) and ``omnifs replicate --now`` claim it and run it with
the executor (omnifs/replication.py, which says what each kind does). Both
sides build and read items only through this module: one frozen dataclass
per kind, each with its payload round trip and its dedup key.

The catalog stores an item as its kind (``KIND``) and its payload, a JSON
object whose fields are the dataclass's fields, by name:

``replicate`` {inode, provider}, dedup ``replicate:<inode>:<provider>``
    make ``provider``'s copy of the file's current version.
``move`` {inode, provider, src}, dedup ``move:<inode>:<provider>``
    move ``provider``'s copy from ``src`` to the key of the file's current
    path. Fields a kind does not have (a stored move's ``dst``) are ignored:
    the executor takes the destination from the path the file has when the
    move runs.
``delete`` {provider, key}, no dedup
    delete the object ``key`` unless a replica row points at it again.
``attrs`` {inode, provider}, dedup ``attrs:<inode>:<provider>``
    rewrite the metadata of ``provider``'s copy (mode, owner, times).
``tier`` {inode, provider, tier, move, archive_only, asked}, dedup ``tier:<inode>:<provider>``
    change the storage tier of ``provider``'s copy (``omnifs cost apply``).
``drop`` {inode, provider, after, move}, dedup ``drop:<inode>:<provider>``
    drop ``provider``'s copy once the stores in ``after`` hold synced copies whose
    bytes hash right (omnifs/drop_copy.py): ``omnifs cost apply``'s re-placement
    and ``omnifs gov check --fix``'s remediation (copy, verify, then drop).

``keep`` {provider, key, path, made_ns, replaced_ns}, no dedup
    ``[dr] keep_versions_for``: the object ``key`` is a copy the mount set aside
    (under ``.omnifs/kept/``) of the version of ``path`` it was about to
    overwrite in place, current from ``made_ns`` to ``replaced_ns``; the
    version goes to the backup target, then the copy is deleted
    (omnifs/dr/versions.py).

A dedup key makes a second item for the same (file, provider) replace the
payload of the pending one instead of queueing another. A kind added here
(migration, tiering, backup, scrub) joins :data:`KINDS` by being listed in
``_CLASSES``; the workers claim exactly :data:`KINDS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self

from omnifs.providers.errors import InvalidInput

if TYPE_CHECKING:
    from .catalog import WorkItem


class Malformed(InvalidInput):
    """A stored item of an unknown kind, or whose payload lacks a field of its kind."""


class Queue(Protocol):
    """What :func:`enqueue` needs of the catalog: its work-queue insert."""

    def enqueue(self, kind: str, payload: dict, *, dedup: str | None = None,
                not_before: float = 0.0) -> int: ...


#: a field's annotation (a string here) -> the JSON value it takes, and its name in errors
_TYPES: dict[str, tuple[type, str]] = {"str": (str, "a string"), "int": (int, "an integer")}


@dataclass(frozen=True, kw_only=True)
class _Work:
    """What every kind has: the provider it acts on, the objects it names, its dedup key."""

    KIND: ClassVar[str]

    #: the provider the item writes to or deletes from
    provider: str

    def payload(self) -> dict[str, Any]:
        """The JSON object the catalog stores for this item: its fields by name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Self:
        """The item a stored payload describes; Malformed when a field is missing or wrong."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in payload and f.default is not MISSING:
                continue
            value, (want, noun) = payload.get(f.name), _TYPES[str(f.type)]
            if not isinstance(value, want) or isinstance(value, bool):
                raise Malformed(f"{cls.KIND} item: its {f.name!r} is {value!r}, not {noun}")
            values[f.name] = value
        return cls(**values)

    @property
    def dedup(self) -> str | None:
        """The key under which a pending item of the same target is replaced, or None."""
        return None

    @property
    def providers(self) -> tuple[str, ...]:
        """Every provider the item touches (a worker needs each usable, holds each limiter)."""
        return (self.provider,)

    @property
    def target(self) -> str:
        """The provider whose objects the item changes (a lost one's items are dropped)."""
        return self.provider

    @property
    def objects(self) -> tuple[str, ...]:
        """Keys in :attr:`provider` the item reads or deletes by name.

        The key of a file's current path, which a replicate or a move writes,
        is not among them: it is looked up when the item runs.
        """
        return ()


@dataclass(frozen=True, kw_only=True)
class FileWork(_Work):
    """Work on one file's copy in one provider; one pending item per (file, provider, kind)."""

    inode: int

    @property
    def dedup(self) -> str:
        return f"{self.KIND}:{self.inode}:{self.provider}"


@dataclass(frozen=True, kw_only=True)
class Replicate(FileWork):
    KIND: ClassVar[str] = "replicate"


@dataclass(frozen=True, kw_only=True)
class Move(FileWork):
    KIND: ClassVar[str] = "move"

    #: the key the replica has now, and leaves
    src: str

    @property
    def objects(self) -> tuple[str, ...]:
        return (self.src,)


@dataclass(frozen=True, kw_only=True)
class Attrs(FileWork):
    KIND: ClassVar[str] = "attrs"


@dataclass(frozen=True, kw_only=True)
class Delete(_Work):
    KIND: ClassVar[str] = "delete"

    key: str

    @property
    def objects(self) -> tuple[str, ...]:
        return (self.key,)


@dataclass(frozen=True, kw_only=True)
class TierChange(FileWork):
    """``omnifs cost apply``: move ``provider``'s copy to ``tier`` (omnifs/costing/moves.py)."""

    KIND: ClassVar[str] = "tier"

    #: a tier name of the price tables; the store's own name for it is found when it runs
    tier: str
    #: the ``cost_moves`` row the item settles (0: none)
    move: int = 0
    #: 1: the policy lets every copy of the file sit in a tier that needs a restore
    archive_only: int = 0
    #: epoch seconds the store was asked to move the copy out of a tier that needs a
    #: restore (a rehydration: the item comes back until the store says it is done); 0: not yet
    asked: int = 0


@dataclass(frozen=True, kw_only=True)
class DropCopy(FileWork):
    """Drop ``provider``'s copy once each store in ``after`` holds a verified copy of the
    current version (omnifs/drop_copy.py): ``omnifs cost apply``'s re-placement and
    ``omnifs gov check --fix``'s remediation."""

    KIND: ClassVar[str] = "drop"

    #: comma-separated stores whose copies replace this one
    after: str
    #: the ``cost_moves`` row the item settles (0: none)
    move: int = 0

    @property
    def stores_after(self) -> tuple[str, ...]:
        return tuple(s for s in self.after.split(",") if s)

    @property
    def providers(self) -> tuple[str, ...]:
        return (self.provider, *self.stores_after)



@dataclass(frozen=True, kw_only=True)
class KeepVersion(Delete):
    """Keep the version the mount set aside at ``key`` on the backup target, then delete it."""

    KIND: ClassVar[str] = "keep"

    #: the file's path (from the root, "/a/b") the version was the content of
    path: str
    #: when the version became current and when it was replaced (ns since the epoch)
    made_ns: int
    replaced_ns: int


Work = Replicate | Move | Attrs | Delete | TierChange | DropCopy | KeepVersion

_CLASSES: dict[str, type[Work]] = {
    c.KIND: c for c in (Replicate, Move, Delete, Attrs, TierChange, DropCopy, KeepVersion)}

#: every kind of work item, the kinds the replication workers claim
KINDS: tuple[str, ...] = tuple(_CLASSES)


def parse(kind: str, payload: Mapping[str, Any]) -> Work:
    """The item the catalog stored as ``kind`` and ``payload``; Malformed if it is none."""
    cls = _CLASSES.get(kind)
    if cls is None:
        raise Malformed(f"unknown work kind {kind!r}")
    if not isinstance(payload, Mapping):
        raise Malformed(f"{kind} item: its payload is not an object")
    return cls.from_payload(payload)


def from_item(item: WorkItem) -> Work:
    """The typed form of a claimed or listed queue entry."""
    return parse(item.kind, item.payload)


def enqueue(queue: Queue, work: Work, *, not_before: float = 0.0) -> int:
    """Queue ``work`` (its kind, payload and dedup key); the queue entry's id."""
    return queue.enqueue(work.KIND, work.payload(), dedup=work.dedup, not_before=not_before)
