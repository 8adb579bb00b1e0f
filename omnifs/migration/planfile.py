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
from typing import IO, Any

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

    #: the summary and the entries it was made of (:attr:`summary`)
    _summary: tuple[list[Entry], int, dict[str, Any]] | None = field(
        default=None, init=False, repr=False, compare=False)

    @property
    def summary(self) -> dict[str, Any]:
        """:func:`summarize` of the entries, made once while the entries stay the same list
        of the same length (a plan's steps ask for it several times)."""
        got = self._summary
        if got is None or got[0] is not self.entries or got[1] != len(self.entries):
            got = self._summary = (self.entries, len(self.entries), summarize(self.entries))
        return got[2]

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


class _Layout(Exception):
    """The file is not laid out as :meth:`MigrationPlan.save` writes (read it whole)."""


#: the lines :meth:`MigrationPlan.save` writes around the entries
_OPEN, _CLOSE = ' "entries": [', " ],"


def _read_by_line(f: Iterable[str]) -> tuple[dict[str, Any], list[Entry], Exception | None]:
    """A plan file as :meth:`MigrationPlan.save` lays it out, an entry per line: each entry
    is hashed and made an :class:`Entry` as it is read, never held as a dict with the rest
    (a 100,000-entry plan read whole as JSON is about 1 KiB of dicts and strings an entry).

    Returns the fields but the entries (``checksum`` included), the entries, and the
    error that made an entry unusable (the checksum is checked first: an edit is
    reported as an edit). :class:`_Layout` when the file is laid out otherwise.
    """
    lines = iter(f)
    if next(lines, None) != "{\n":
        raise _Layout
    head_lines = []
    for line in lines:
        if line.rstrip("\n") == _OPEN:
            break
        head_lines.append(line)
    else:
        raise _Layout
    try:
        head = json.loads("{" + "".join(head_lines).rstrip().removesuffix(",") + "}")
    except json.JSONDecodeError:
        raise _Layout from None
    if not isinstance(head, dict) or not isinstance(head.get("format"), str):
        raise _Layout
    before, after = _around_entries(head)
    h = hashlib.sha256(before)
    entries: list[Entry] = []
    bad: Exception | None = None
    for j, line in enumerate(lines):
        text = line.rstrip("\n")
        if text == _CLOSE:
            break
        try:
            d = json.loads(text.removesuffix(","))
        except json.JSONDecodeError:
            raise _Layout from None
        h.update((b"," if j else b"") + canonical(d))
        if bad is None:
            try:
                entries.append(Entry.from_json(d))
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                bad = e
    else:
        raise _Layout
    try:
        tail = json.loads("{" + "".join(lines))
    except json.JSONDecodeError:
        raise _Layout from None
    if not isinstance(tail, dict) or set(tail) != {"checksum"} or set(head) & {"checksum",
                                                                               "entries"}:
        raise _Layout
    h.update(after)
    head["checksum"] = tail["checksum"], "sha256:" + h.hexdigest()
    return head, entries, bad


def load(path: str | os.PathLike[str], *, catalog_id: str | None = None) -> MigrationPlan:
    """Read a plan file; InvalidInput (one line) when it cannot be used.

    With ``catalog_id``, a plan that names another catalog is refused; a plan made where
    no catalog existed yet (``catalog_id`` null) fits any. A file laid out as
    :meth:`MigrationPlan.save` writes it is read an entry at a time
    (:func:`_read_by_line`); any other valid JSON is read whole.
    """
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as f:
            try:
                data, entries, bad = _read_by_line(f)
                given, computed = data.pop("checksum")
            except _Layout:
                f.seek(0)
                data, entries, bad, given, computed = _read_whole(f)
    except OSError as e:
        raise InvalidInput(f"cannot read plan {name}: {e.strerror or e}") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInput(f"{name} is not a migration plan (not valid JSON)") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InvalidInput(f"{name} is not a migration plan")
    if data.get("version") != VERSION:
        raise InvalidInput(f"{name}: plan format version {data.get('version')!r} is not "
                           f"supported (this omnifs reads version {VERSION})")
    if given is None or given != computed:
        raise InvalidInput(f"{name} was edited or damaged (its checksum does not match): "
                           "make a new plan with `omnifs migrate plan`")
    try:
        if bad is not None:
            raise bad
        plan = MigrationPlan(
            src=Place.from_json(data["src"]), dst=Place.from_json(data["dst"]),
            mode=str(data["mode"]), entries=entries,
            delete=bool(data["delete"]), include=tuple(data["filters"]["include"]),
            exclude=tuple(data["filters"]["exclude"]), catalog_id=data["catalog_id"],
            estimate=data.get("estimate"), time_estimate=data.get("time_estimate"),
            created=str(data["created"]))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise InvalidInput(f"{name} is not a valid migration plan ({type(e).__name__}: {e})"
                           ) from None
    check_catalog(plan, name, catalog_id)
    return plan


def check_catalog(plan: MigrationPlan, path: str | os.PathLike[str],
                  catalog_id: str | None) -> None:
    """Refuse (one line) the plan read from ``path`` when it names another catalog than
    ``catalog_id``; a plan made where no catalog existed yet (``catalog_id`` null) fits any."""
    if catalog_id is not None and plan.catalog_id not in (None, catalog_id):
        raise InvalidInput(f"{os.fspath(path)} belongs to catalog {plan.catalog_id}, "
                           f"not to this one ({catalog_id})")


def _read_whole(f: IO[str]) -> tuple[Any, list[Entry], Exception | None, Any, str | None]:
    """A plan file in any JSON layout, read whole: the fields but the entries, the entries,
    the error that made one unusable, the checksum given and the one computed."""
    data = json.load(f)
    if not isinstance(data, dict):
        return data, [], None, None, None
    head = {k: v for k, v in data.items() if k not in ("checksum", "entries")}
    listed = data.get("entries")
    if not isinstance(listed, list):
        return head, [], None, data.get("checksum"), None
    computed = _checksum_of(head, listed)
    entries: list[Entry] = []
    bad: Exception | None = None
    try:
        entries = [Entry.from_json(e) for e in listed]
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        bad = e
    return head, entries, bad, data.get("checksum"), computed
