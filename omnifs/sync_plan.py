"""Deciding what a copy or sync must do, without doing any I/O.

Kept apart from the transfer engine so that the rules (what counts as "the
same object", what the globs select, what ``--delete`` removes) are tested as
plain functions over ``ObjectInfo`` records.

Trust order when comparing a source object with what the destination holds:
size first (different sizes are always different), then the SHA-256 omnifs
records in user metadata, then a native checksum both stores report (md5,
crc32c), and last size plus mtime (ours from metadata, else the store's).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

from omnifs.providers import META_MTIME, RESERVED_PREFIX, ObjectInfo

from .printable import escape_controls
from .units import human_bytes

#: two mtimes closer than this count as equal (stores keep whole seconds or ms)
MTIME_WINDOW = 1.0


@dataclass(frozen=True)
class Verdict:
    same: bool
    #: which evidence decided: "size", "sha256", "md5", "crc32c", "mtime"
    by: str
    #: True when the evidence was not enough and a head() of both sides may settle it
    need_metadata: bool = False


class Compared(Protocol):
    """What :func:`compare` reads of an object: an ``ObjectInfo``, or a record as slim as
    :class:`omnifs.migration.listed.Listed`."""

    @property
    def size(self) -> int: ...
    @property
    def sha256(self) -> str | None: ...
    @property
    def checksums(self) -> Mapping[str, str]: ...
    @property
    def metadata(self) -> Mapping[str, str]: ...
    @property
    def metadata_known(self) -> bool: ...
    @property
    def mtime(self) -> float | None: ...


def compare(src: Compared, dst: Compared) -> Verdict:
    """Is ``dst`` already a whole, equal copy of ``src``?"""
    if src.size != dst.size:
        return Verdict(False, "size")
    if src.sha256 and dst.sha256:
        return Verdict(src.sha256 == dst.sha256, "sha256")
    sums, dsums = src.checksums, dst.checksums  # once: a slim record builds them when asked
    for algo in ("md5", "crc32c"):
        a, b = sums.get(algo), dsums.get(algo)
        if a and b:
            return Verdict(a.lower() == b.lower(), algo)
    # a listing that skipped user metadata (list(metadata=False)): a head may find a sha256
    need = not (src.metadata_known and dst.metadata_known)
    s, d = src.mtime, dst.mtime
    if s is None or d is None:
        return Verdict(False, "mtime", need)
    # a copy omnifs made carries the source's mtime verbatim: then only exact equality counts
    window = 1e-3 if META_MTIME in dst.metadata else MTIME_WINDOW
    return Verdict(abs(s - d) <= window, "mtime", need)


@lru_cache(maxsize=256)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    """``**`` crosses ``/``, ``*`` and ``?`` do not; a pattern without ``/`` also
    matches any basename (as rsync and rclone filters do)."""
    anchored = pattern.startswith("/")
    pattern = pattern.lstrip("/")
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            if i < len(pattern) and pattern[i] == "/":  # "a/**/b" also matches "a/b"
                out[-1] = "(?:.*/)?"
                i += 1
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1:j].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    body = "".join(out)
    if "/" not in pattern and not anchored:
        return re.compile(f"^(?:.*/)?{body}$")
    return re.compile(f"^{body}$")


@dataclass(frozen=True)
class Filter:
    """``--include``/``--exclude`` globs over keys relative to the source prefix."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def wants(self, rel: str) -> bool:
        if rel.startswith(RESERVED_PREFIX):
            return False  # omnifs's own bookkeeping is never copied as data
        if self.include and not any(_glob_regex(p).match(rel) for p in self.include):
            return False
        return not any(_glob_regex(p).match(rel) for p in self.exclude)


@dataclass
class Action:
    #: "copy", "skip" or "delete"
    op: str
    #: key relative to the source/destination prefix
    rel: str
    size: int = 0
    reason: str = ""
    src: ObjectInfo | None = None
    dst: ObjectInfo | None = None


@dataclass
class Plan:
    copies: list[Action] = field(default_factory=list)
    skips: list[Action] = field(default_factory=list)
    deletes: list[Action] = field(default_factory=list)
    #: pairs with equal size whose listings lacked the metadata to decide
    undecided: list[Action] = field(default_factory=list)

    @property
    def bytes_to_copy(self) -> int:
        return sum(a.size for a in self.copies)

    def lines(self) -> list[str]:
        """The plan as ``--dry-run`` prints it: one line per change, then totals."""
        out = [f"copy {escape_controls(a.rel)} ({human_bytes(a.size)}, {a.reason})"
               for a in self.copies]
        out += [f"delete {escape_controls(a.rel)}" for a in self.deletes]
        out.append(f"plan: {len(self.copies)} to copy ({human_bytes(self.bytes_to_copy)}), "
                   f"{len(self.skips)} unchanged, {len(self.deletes)} to delete")
        return out


def relative(key: str, prefix: str) -> str:
    return key[len(prefix):]


def decide(plan: Plan, rel: str, s: ObjectInfo, d: ObjectInfo | None, *,
           overwrite: bool = False) -> Action:
    """File one source object into ``plan`` (copy, skip or undecided) and return its action.

    One key at a time, so a tree copy can start copying while the rest of
    the source listing is still arriving.
    """
    if d is None:
        act = Action("copy", rel, s.size, "missing", s, None)
        plan.copies.append(act)
        return act
    if overwrite:
        act = Action("copy", rel, s.size, "overwrite", s, d)
        plan.copies.append(act)
        return act
    v = compare(s, d)
    if v.need_metadata:
        # neither copy nor skip until settle() has the full metadata of both sides
        act = Action("check", rel, s.size, "needs metadata", s, d)
        plan.undecided.append(act)
        return act
    act = Action("skip" if v.same else "copy", rel, s.size,
                 f"{'same' if v.same else 'differs'} by {v.by}", s, d)
    if v.same:
        plan.skips.append(act)
    else:
        plan.copies.append(act)
    return act


def build_plan(src: dict[str, ObjectInfo], dst: dict[str, ObjectInfo], *,
               delete: bool = False, filt: Filter | None = None, overwrite: bool = False) -> Plan:
    """``src``/``dst`` map relative keys to listings. ``overwrite`` copies even equal objects."""
    filt = filt or Filter()
    plan = Plan()
    for rel in sorted(src):
        if filt.wants(rel):
            decide(plan, rel, src[rel], dst.get(rel), overwrite=overwrite)
    add_deletes(plan, src, dst, delete=delete, filt=filt)
    return plan


def add_deletes(plan: Plan, src: dict[str, ObjectInfo] | set[str], dst: dict[str, ObjectInfo], *,
                delete: bool, filt: Filter) -> None:
    """With ``delete``, the destination objects the (complete) source listing lacks."""
    if delete:
        for rel in sorted(dst):
            # a filtered-out name is outside the sync: never delete it
            if rel not in src and filt.wants(rel):
                plan.deletes.append(Action("delete", rel, dst[rel].size, "extra", None, dst[rel]))


def settle(plan: Plan, decided: list[tuple[Action, ObjectInfo, ObjectInfo]]) -> None:
    """Fold the head()-refreshed pairs of ``plan.undecided`` back into the plan."""
    for act, s, d in decided:
        v = compare(s, d)
        act.src, act.dst = s, d
        act.reason = f"{'same' if v.same else 'differs'} by {v.by}"
        (plan.skips if v.same else plan.copies).append(Action(
            "skip" if v.same else "copy", act.rel, act.size, act.reason, s, d))
    plan.undecided.clear()
    plan.copies.sort(key=lambda a: a.rel)
