"""The migration plan as a JSON file: what ``migrate plan`` writes and the later steps read.

Layout (format version 1)::

    {"format": "omnifs-migration-plan", "version": 1, "created": "2026-...Z",
     "src": {"given": "s3://b/data", "provider": "s3://b", "uri": "s3://b", "key": "data"},
     "dst": {...}, "mode": "copy" | "move", "delete": false,
     "filters": {"include": [...], "exclude": [...]},
     "catalog_id": "0f3a..." | null,
     "summary": {...},            # omnifs.migration.plan.summarize
     "estimate": {...} | null,    # omnifs.cost.CostEstimate.as_dict
     "time_estimate": {...},      # omnifs.migration.timing.TimeEstimate.as_dict (absent
                                  # when none was made, and in plans older than it)
     "entries": [{"action": "copy", "key": "a/b.txt", "size": 5, ...}, ...],
     "checksum": "sha256:..."}

``checksum`` is the SHA-256 of the canonical JSON of every other field
(sorted keys, no spaces, UTF-8). A plan whose checksum does not match was
edited or damaged and is refused on load with one line: the plan is what
was priced and approved, a run must not do anything else. A plan made for
one catalog is refused by another. Fields added later (``time_estimate``,
an entry's ``src_etag`` and ``src_mtime``) are written only when they have
a value, so an older plan read and written again keeps its checksum.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from omnifs.providers import InvalidInput

from ..files import atomic_writer
from .plan import Entry, summarize

FORMAT = "omnifs-migration-plan"
VERSION = 1


@dataclass(frozen=True)
class Place:
    """One side of the migration: as the user typed it, and what it resolved to."""

    given: str
    provider: str
    uri: str
    key: str

    def to_json(self) -> dict[str, str]:
        return {"given": self.given, "provider": self.provider, "uri": self.uri,
                "key": self.key}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Place:
        return cls(given=str(d["given"]), provider=str(d["provider"]), uri=str(d["uri"]),
                   key=str(d["key"]))


@dataclass
class MigrationPlan:
    src: Place
    dst: Place
    mode: str
    entries: list[Entry]
    delete: bool = False
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    catalog_id: str | None = None
    #: the cost estimate (omnifs.policy.costs.CostEstimate.as_dict), None when it could not be made
    estimate: dict[str, Any] | None = None
    #: the time estimate (omnifs.migration.timing.TimeEstimate.as_dict), None when none
    time_estimate: dict[str, Any] | None = None
    created: str = field(
        default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))

    @property
    def summary(self) -> dict[str, Any]:
        return summarize(self.entries)

    def head(self) -> dict[str, Any]:
        """Every field the checksum covers but the entries."""
        return {"format": FORMAT, "version": VERSION, "created": self.created,
                "src": self.src.to_json(), "dst": self.dst.to_json(), "mode": self.mode,
                "delete": self.delete,
                "filters": {"include": list(self.include), "exclude": list(self.exclude)},
                "catalog_id": self.catalog_id, "summary": self.summary,
                "estimate": self.estimate,
                **({} if self.time_estimate is None else {"time_estimate": self.time_estimate})}

    def body(self) -> dict[str, Any]:
        """Everything the checksum covers."""
        return {**self.head(), "entries": [e.to_json() for e in self.entries]}

    def checksum(self) -> str:
        """``checksum(self.body())``, without holding every entry's JSON at once."""
        return _checksum_of(self.head(), (e.to_json() for e in self.entries))

    def to_json(self) -> dict[str, Any]:
        body = self.body()
        return {**body, "checksum": checksum(body)}

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the plan atomically (a reader never sees half a plan), durably and
        privately (:func:`omnifs.files.atomic_writer`).

        One field per line and one entry per line (its canonical JSON, the form
        the checksum covers): a 100,000-entry plan is written entry by entry,
        never held as one text.
        """
        head = self.head()
        before, after = _around_entries(head)
        h = hashlib.sha256(before)
        with atomic_writer(path) as f:
            f.write(b"{\n")
            for k, v in head.items():
                f.write(f" {_dumps(k)}: {_dumps(v)},\n".encode())
            f.write(b' "entries": [')
            for i, e in enumerate(self.entries):
                line = canonical(e.to_json())  # written as it is hashed: one encoding
                h.update((b"," if i else b"") + line)
                f.write((b"\n  " if i == 0 else b",\n  ") + line)
            h.update(after)
            total = "sha256:" + h.hexdigest()
            f.write(f"\n ],\n \"checksum\": {_dumps(total)}\n}}\n".encode())


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


#: ``json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``'s
#: encoder, made once (dumps makes one per call: a quarter of a 100,000-entry save)
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(body: Any) -> bytes:
    return _CANONICAL.encode(body).encode("utf-8")


def checksum(body: dict[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(canonical(body)).hexdigest()


def _around_entries(head: dict[str, Any]) -> tuple[bytes, bytes]:
    """The canonical JSON of ``{**head, "entries": [...]}`` before and after the entries.

    The canonical JSON of a dict is its sorted ``"key":value`` pairs joined
    by commas, of a list its items joined by commas: the entries can be
    hashed one at a time between these two pieces.
    """
    keys = sorted(head)
    pairs = [canonical(k) + b":" + canonical(head[k]) for k in keys]
    n = sum(1 for k in keys if k < "entries")
    before = b"{" + b"".join(p + b"," for p in pairs[:n]) + b'"entries":['
    after = b"]" + b"".join(b"," + p for p in pairs[n:]) + b"}"
    return before, after


def _checksum_of(head: dict[str, Any], entries: Iterable[dict[str, Any]]) -> str:
    """:func:`checksum` of ``{**head, "entries": list(entries)}``, one entry at a time."""
    before, after = _around_entries(head)
    h = hashlib.sha256(before)
    for j, e in enumerate(entries):
        h.update((b"," if j else b"") + canonical(e))
    h.update(after)
    return "sha256:" + h.hexdigest()


def load(path: str | os.PathLike[str], *, catalog_id: str | None = None) -> MigrationPlan:
    """Read a plan file; InvalidInput (one line) when it cannot be used.

    With ``catalog_id``, a plan that names another catalog is refused; a plan made where
    no catalog existed yet (``catalog_id`` null) fits any.
    """
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise InvalidInput(f"cannot read plan {name}: {e.strerror or e}") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInput(f"{name} is not a migration plan (not valid JSON)") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InvalidInput(f"{name} is not a migration plan")
    if data.get("version") != VERSION:
        raise InvalidInput(f"{name}: plan format version {data.get('version')!r} is not "
                           f"supported (this omnifs reads version {VERSION})")
    head = {k: v for k, v in data.items() if k not in ("checksum", "entries")}
    listed = data.get("entries")
    if not isinstance(listed, list) or data.get("checksum") != _checksum_of(head, listed):
        raise InvalidInput(f"{name} was edited or damaged (its checksum does not match): "
                           "make a new plan with `omnifs migrate plan`")
    try:
        plan = MigrationPlan(
            src=Place.from_json(data["src"]), dst=Place.from_json(data["dst"]),
            mode=str(data["mode"]), entries=[Entry.from_json(e) for e in data["entries"]],
            delete=bool(data["delete"]), include=tuple(data["filters"]["include"]),
            exclude=tuple(data["filters"]["exclude"]), catalog_id=data["catalog_id"],
            estimate=data.get("estimate"), time_estimate=data.get("time_estimate"),
            created=str(data["created"]))
    except (KeyError, TypeError, ValueError) as e:
        raise InvalidInput(f"{name} is not a valid migration plan ({type(e).__name__}: {e})"
                           ) from None
    if catalog_id is not None and plan.catalog_id not in (None, catalog_id):
        raise InvalidInput(f"{name} belongs to catalog {plan.catalog_id}, "
                           f"not to this one ({catalog_id})")
    return plan
