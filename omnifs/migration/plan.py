"""What a migration must do, object by object: ``omnifs migrate plan``'s diff.

The comparison is the sync differ's (:mod:`omnifs.sync_plan`: size, then the
SHA-256 omnifs records in metadata, then a native checksum both sides report,
md5 or crc32c, then size plus mtime), and the inventory works as the tree
copy's (:func:`omnifs.tree_copy.plan_tree`: both sides listed without user
metadata, where a store would HEAD every object for it; only pairs the
listings cannot decide are headed), with slimmer records
(:class:`~omnifs.migration.listed.Listed`) and
optionally an older plan's checksums (:func:`plan_since`). This module turns
that plan into the four migration actions:

* ``copy``: the object is missing at the destination;
* ``overwrite``: the destination holds a different object under the name;
* ``skip``: the destination already holds an equal copy;
* ``delete``: a destination object the source lacks (only with ``--delete``).

In ``move`` mode every source object the plan covers (copy, overwrite, skip)
is marked ``delete_source``: the run deletes it once its destination copy is
verified. The summary counts objects and bytes per action and per storage
tier, which is what a cost estimate needs (reads from cold tiers, early
deletion, egress).
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from omnifs.providers import InvalidInput, NotFound, ObjectInfo, Provider

from ..copy_options import Options, retrying
from ..same_store import key_in, same_store
from ..sync_plan import Filter, Verdict, compare
from ..tree_copy import dir_prefix
from .listed import Listed

ACTIONS = ("copy", "overwrite", "skip", "delete")
MODES = ("copy", "move")
#: the tier name in summaries for objects whose store reports none (local files)
NO_TIER = "-"


@dataclass(frozen=True, slots=True)
class Entry:
    """One object of the plan; ``key`` is relative to the SRC (and DST) prefix."""

    action: str
    key: str
    #: the source object's size (for ``delete``: the destination object's)
    size: int
    #: why: "missing", "differs by sha256", "same by md5", "extra", ...
    reason: str
    src_tier: str | None = None
    dst_tier: str | None = None
    #: the size of the destination object the action replaces or removes, None when absent
    dst_size: int | None = None
    #: the source's SHA-256 as recorded in its metadata, when the listing had it
    sha256: str | None = None
    #: the source's native checksums from the listing: {"md5": ..., "crc32c": ...}
    checksums: dict[str, str] = field(default_factory=dict)
    #: move mode: delete the source object after its destination copy is verified
    delete_source: bool = False
    #: the source object's etag and last-modified time as listed: what tells a later
    #: ``plan --since`` that the object is unchanged (None in older plans)
    src_etag: str | None = None
    src_mtime: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "key": self.key, "size": self.size,
                "reason": self.reason, "src_tier": self.src_tier, "dst_tier": self.dst_tier,
                "dst_size": self.dst_size, "sha256": self.sha256,
                "checksums": dict(sorted(self.checksums.items())),
                "delete_source": self.delete_source,
                **({} if self.src_etag is None else {"src_etag": self.src_etag}),
                **({} if self.src_mtime is None else {"src_mtime": self.src_mtime})}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Entry:
        """An entry from its JSON; the words many entries repeat (action, reason, tiers) are
        shared, and an md5 equal to the etag is the etag's string (a 100,000-entry plan)."""
        if d.get("action") not in ACTIONS:
            raise ValueError(f"unknown action {d.get('action')!r}")
        etag = None if d.get("src_etag") is None else str(d["src_etag"])
        checksums = dict(d.get("checksums") or {})
        if etag is not None and checksums.get("md5") == etag:
            checksums["md5"] = etag
        return cls(action=sys.intern(d["action"]), key=str(d["key"]), size=int(d["size"]),
                   reason=sys.intern(str(d.get("reason", ""))),
                   src_tier=_shared(d.get("src_tier")), dst_tier=_shared(d.get("dst_tier")),
                   dst_size=None if d.get("dst_size") is None else int(d["dst_size"]),
                   sha256=d.get("sha256"),
                   checksums=checksums,
                   delete_source=bool(d.get("delete_source", False)),
                   src_etag=etag,
                   src_mtime=None if d.get("src_mtime") is None else float(d["src_mtime"]))


def _shared(tier: Any) -> Any:
    return sys.intern(tier) if isinstance(tier, str) else tier


Side = Listed | ObjectInfo


def _entry(action: str, rel: str, size: int, reason: str, s: Side | None, d: Side | None,
           move: bool) -> Entry:
    return Entry(action=action, key=rel, size=size, reason=sys.intern(reason),
                 src_tier=s.tier if s else None, dst_tier=d.tier if d else None,
                 dst_size=d.size if d else None,
                 sha256=s.sha256 if s else None, checksums=dict(s.checksums) if s else {},
                 delete_source=move and s is not None,
                 src_etag=s.etag if s else None, src_mtime=s.last_modified if s else None)


def _verdict(v: Verdict) -> str:
    return f"{'same' if v.same else 'differs'} by {v.by}"


def decide(src: dict[str, Listed], dst: dict[str, Listed], *, mode: str = "copy",
           filt: Filter | None = None, delete: bool = False
           ) -> tuple[list[Entry], list[tuple[str, Listed, Listed]]]:
    """The entries two listings decide, and the pairs they cannot (equal sizes, listings
    without the metadata to compare: a head() of both sides may settle them).

    The comparison is :func:`omnifs.sync_plan.compare`'s, the deletes
    :func:`omnifs.sync_plan.add_deletes`' (a filtered-out name is never deleted).
    Empties both listings as it goes: a pair's records are freed once its entry
    exists, so a 100,000-object plan never holds the listings and the entries whole
    at once. The entries come in key order; the undecided pairs are left out.
    """
    if mode not in MODES:
        raise InvalidInput(f"unknown mode {mode!r}: use copy or move")
    filt = filt or Filter()
    move = mode == "move"
    out: list[Entry] = []
    undecided: list[tuple[str, Listed, Listed]] = []
    for rel in sorted(src):
        s, d = src.pop(rel), dst.pop(rel, None)
        if not filt.wants(rel):
            continue
        if d is None:
            out.append(_entry("copy", rel, s.size, "missing", s, None, move))
            continue
        v = compare(s, d)
        if v.need_metadata:
            undecided.append((rel, s, d))
        else:
            out.append(_entry("skip" if v.same else "overwrite", rel, s.size, _verdict(v), s, d,
                              move))
    if delete:  # what is left in dst: the objects the (complete) source listing lacks
        out += [_entry("delete", rel, dst[rel].size, "extra", None, dst[rel], False)
                for rel in sorted(dst) if filt.wants(rel)]
    dst.clear()
    return out, undecided


def in_order(out: list[Entry]) -> list[Entry]:
    """The entries sorted by key (the plan file's order). A key has one entry: a delete is
    for a key the source lacks, every other action for a source key."""
    out.sort(key=attrgetter("key"))
    return out


def _relative(infos: Iterable[ObjectInfo], prefix: str) -> dict[str, Listed]:
    return {i.key[len(prefix):]: Listed.of(i.key[len(prefix):], i) for i in infos
            if not i.is_prefix and i.key.startswith(prefix) and i.key != prefix}


def diff(src: Iterable[ObjectInfo], dst: Iterable[ObjectInfo], *, src_prefix: str = "",
         dst_prefix: str = "", mode: str = "copy", filt: Filter | None = None,
         delete: bool = False) -> list[Entry]:
    """The plan for two listings already in hand (keys are full keys under the prefixes).

    Pairs still undecided (equal sizes, listings without the metadata to
    compare, no head() done) become ``overwrite``: copying an equal object
    again costs money but never loses data, skipping a different one would.
    """
    out, undecided = decide(_relative(src, dir_prefix(src_prefix)),
                            _relative(dst, dir_prefix(dst_prefix)), mode=mode, filt=filt,
                            delete=delete)
    out += [_entry("overwrite", rel, s.size, "needs metadata", s, d, mode == "move")
            for rel, s, d in undecided]
    return in_order(out)


def _as_dir(key: str | None) -> str | None:
    return None if key is None else dir_prefix(key)


def check_places(src: Provider, src_key: str, dst: Provider, dst_key: str) -> None:
    """Refuse SRC = DST and trees inside one another on one store (one line each).

    Overlap is refused in both modes: a destination inside the source would
    be listed as source on the next run, a source inside the destination
    would be deleted by ``--delete``, and ``move`` would delete what it copied.
    """
    if not same_store(src, dst):
        return
    sp, dp = dir_prefix(src_key), dir_prefix(dst_key)
    a = _as_dir(key_in(dst, src, sp))  # the source tree in the destination's keys
    if a is not None:
        if a == dp:
            raise InvalidInput("SRC and DST are the same place", provider=dst.name, key=dst_key)
        if a.startswith(dp) or dp.startswith(a):
            raise InvalidInput("SRC and DST overlap (one is inside the other)",
                               provider=dst.name, key=dst_key)
        return
    b = _as_dir(key_in(src, dst, dp))  # the destination tree in the source's keys
    if b is not None and (b == sp or b.startswith(sp) or sp.startswith(b)):
        raise InvalidInput("SRC and DST overlap (one is inside the other)",
                           provider=src.name, key=src_key)


@dataclass
class Reused:
    """What ``plan --since`` took from the old plan instead of asking the source."""

    #: source objects found unchanged whose recorded checksums were carried over
    checksums: int = 0
    #: source head() calls not made because the carried-over SHA-256 settled the pair
    heads_saved: int = 0


def unchanged(old: Entry, info: Listed | ObjectInfo) -> bool:
    """Is the listed source object the one ``old`` described? Size plus etag, else mtime."""
    if old.action == "delete" or old.size != info.size:
        return False
    if old.src_etag and info.etag:
        return old.src_etag == info.etag
    if old.src_mtime is not None and info.last_modified is not None:
        return abs(old.src_mtime - info.last_modified) < 1e-6
    return False


def carry(info: Listed, old: Entry) -> Listed:
    """``info`` with the old plan's SHA-256 and native checksums (the listing's win)."""
    return info.with_known(old.sha256, old.checksums)


#: a tree whose top level holds more "directories" than this is listed flat (a request each
#: would be more round trips than the flat listing's pages)
SPLIT_MAX = 1000
#: the first this many keys of a flat listing (a page, on S3 and GCS) tell the directories'
#: size: directories of fewer than PAGE / (checkers - 1) keys are not worth a request each
PAGE = 1000


def _list(p: Provider, prefix: str, options: Options) -> dict[str, Listed]:
    """Every object under ``prefix``, as :class:`Listed` records, by relative key.

    The server answers a listing page by page, each page a round trip (and, on
    some servers, a search of the whole bucket). A tree of big directories is
    listed one directory per request stream, ``options.checkers`` at a time
    (the top level first, with the delimiter): the pages' round trips overlap
    instead of adding up, and a page is a search of one directory. That costs
    a request per directory more than a flat listing, which is worth it when
    a directory fills at least ``1 / (checkers - 1)`` of a page: so the flat
    listing starts, and its first :data:`PAGE` keys decide. Small trees, flat
    trees, trees of small directories and above :data:`SPLIT_MAX` directories
    are listed flat. Measured on moto with 100,000 keys in 100 directories:
    59 s by directory, 266 s flat (each of its pages sorts the rest of the bucket).
    """
    out: dict[str, Listed] = {}
    dirs: list[str] = []

    def add(infos: Iterable[ObjectInfo], top: bool = False) -> None:
        for info in infos:
            if info.is_prefix:
                if top and info.key.startswith(prefix):
                    dirs.append(info.key)
            elif info.key.startswith(prefix) and info.key != prefix:
                rel = info.key[len(prefix):]
                out[rel] = Listed.of(rel, info)

    def whole(under: str) -> None:
        try:
            retrying(lambda: add(p.list(under, recursive=True, metadata=False)), options)
        except NotFound:
            if under == prefix:
                raise  # the tree is missing; a directory gone since the top listing is empty

    def flat_or_split() -> bool:
        """List flat, unless the first page shows big directories: then False."""
        listing = p.list(prefix, recursive=True, metadata=False)
        first = list(itertools.islice(listing, PAGE))
        add(first)
        if len(first) == PAGE and options.checkers > 1:
            tops = {i.key[len(prefix):].split("/", 1)[0] for i in first
                    if "/" in i.key[len(prefix):]}
            if tops and len(tops) <= options.checkers - 1:  # PAGE / (checkers - 1) a directory
                getattr(listing, "close", lambda: None)()  # a generator: stop paging
                return False
        add(listing)
        return True

    def top() -> None:
        dirs.clear()
        add(p.list(prefix, recursive=False, metadata=False), top=True)

    try:
        if retrying(flat_or_split, options):
            return out
        retrying(top, options)
        if len(dirs) > SPLIT_MAX:
            whole(prefix)
        elif dirs:
            with ThreadPoolExecutor(min(len(dirs), options.checkers)) as pool:
                for f in [pool.submit(whole, d) for d in dirs]:
                    f.result()
    except NotFound:
        return {}
    return out


def plan_since(src: Provider, src_key: str, dst: Provider, dst_key: str, since: list[Entry],
               *, mode: str = "copy", filt: Filter | None = None, delete: bool = False,
               options: Options | None = None, reused: Reused | None = None) -> list[Entry]:
    """The inventory and its entries (see :func:`decide`), reusing an older plan's checksums.

    ``since`` is that plan's entries (empty: a plain inventory). A source
    object the old plan saw unchanged (:func:`unchanged`) keeps the
    SHA-256 the old inventory found for it (its listing or a head()), so a
    pair the listings cannot decide heads only the destination. The pairs
    the listings leave undecided are headed (both sides, ``options.checkers``
    at a time) and compared again, as :func:`omnifs.sync_plan.settle` does.
    """
    options = options or Options()
    reused = reused if reused is not None else Reused()
    sp, dp = dir_prefix(src_key), dir_prefix(dst_key)
    old = {e.key: e for e in since if e.action != "delete"}
    with ThreadPoolExecutor(2) as pool:
        fs = pool.submit(_list, src, sp, options)
        fd = pool.submit(_list, dst, dp, options)
        s_list, d_list = fs.result(), fd.result()
    known: set[str] = set()
    for rel, info in s_list.items():
        e = old.get(rel)
        if e is not None and unchanged(e, info) and (e.sha256 or e.checksums):
            s_list[rel] = carry(info, e)
            reused.checksums += 1
            if s_list[rel].sha256:
                known.add(rel)
    del old
    out, undecided = decide(s_list, d_list, mode=mode, filt=filt, delete=delete)
    if undecided:
        def refresh(pair: tuple[str, Listed, Listed]) -> Entry:
            rel, listed, _ = pair
            s: Side = listed if rel in known else retrying(lambda: src.head(sp + rel), options)
            d = retrying(lambda: dst.head(dp + rel), options)
            v = compare(s, d)
            return _entry("skip" if v.same else "overwrite", rel, listed.size, _verdict(v), s, d,
                          mode == "move")

        reused.heads_saved += sum(1 for rel, _, _ in undecided if rel in known)
        with ThreadPoolExecutor(max(1, options.checkers)) as pool:
            out += pool.map(refresh, undecided)
    return in_order(out)


def plan_migration(src: Provider, src_key: str, dst: Provider, dst_key: str, *,
                   mode: str = "copy", filt: Filter | None = None, delete: bool = False,
                   options: Options | None = None, since: list[Entry] | None = None,
                   reused: Reused | None = None) -> list[Entry]:
    """Inventory both trees by listing and diff them (see the module docstring).

    With ``since`` (an older plan's entries for the same SRC and DST), the
    checksums it recorded for unchanged source objects are reused
    (:func:`plan_since`); ``reused`` counts what that saved.
    """
    if mode not in MODES:
        raise InvalidInput(f"unknown mode {mode!r}: use copy or move")
    check_places(src, src_key, dst, dst_key)
    return plan_since(src, src_key, dst, dst_key, since or [], mode=mode, options=options,
                      filt=filt, delete=delete, reused=reused)


def _count(table: dict[str, dict[str, int]], tier: str | None, size: int) -> None:
    row = table.setdefault(tier or NO_TIER, {"objects": 0, "bytes": 0})
    row["objects"] += 1
    row["bytes"] += size


def summarize(items: Iterable[Entry]) -> dict[str, Any]:
    """Objects and bytes per action and per tier, for the CLI and the cost estimate.

    ``{"copy": {"objects", "bytes", "source_tiers": {tier: {"objects", "bytes"}},
    "destination_tiers": {...}}, "overwrite": ..., "skip": ..., "delete": ...,
    "delete_source": {"objects", "bytes", "source_tiers"}}``. Source tiers of
    copy and overwrite are what is read (retrieval fees); destination tiers of
    overwrite and delete count the destination objects replaced or removed, by their
    own sizes (early deletion);
    ``delete_source`` is what a move removes from the source.
    """
    out: dict[str, Any] = {a: {"objects": 0, "bytes": 0, "source_tiers": {},
                               "destination_tiers": {}} for a in ACTIONS}
    out["delete_source"] = {"objects": 0, "bytes": 0, "source_tiers": {}}
    for e in items:
        row = out[e.action]
        row["objects"] += 1
        row["bytes"] += e.size
        if e.action != "delete":
            _count(row["source_tiers"], e.src_tier, e.size)
        if e.action in ("overwrite", "skip", "delete"):
            _count(row["destination_tiers"], e.dst_tier,
                   e.size if e.dst_size is None else e.dst_size)
        if e.delete_source:
            ds = out["delete_source"]
            ds["objects"] += 1
            ds["bytes"] += e.size
            _count(ds["source_tiers"], e.src_tier, e.size)
    return out
