"""``omnifs migrate rollback`` and ``omnifs migrate finalize``: undo a run, or accept it.

Rollback returns the destination to its state before the run, item by item
from the catalog (``cat.migrations``):

* a move's source object that the run deleted (``source_deleted``) is copied
  back from the destination FIRST and its bytes checked, before anything at
  the destination is touched: nothing is ever left without a copy;
* ``copy``: the new destination object is removed;
* ``overwrite`` / ``delete``: the replaced destination object is copied back
  from the copy the run saved before replacing it (``saved`` =
  ``copy:<tree>/.omnifs/migrations/<id>/<key>``, a same-store copy) and
  the restored bytes' SHA-256 is checked against the saved copy's.

Items the run did not finish are left alone, with two exceptions that a run
killed between its store write and its catalog write leaves behind: an item
with a saved copy is restored from it (restoring the state before the run is
right whether or not the overwrite happened), and a ``copy`` whose
destination object holds exactly the source's SHA-256 is removed.

Every step checks what is there before it acts, so rolling back again after
kill -9 finishes the work: a restored source is recognised by its SHA-256, a
removed object is absent, a saved copy stays until its item is marked
``rolled_back``. The saved copies are deleted last, and the migration's state
becomes ``rolled_back`` once every item is undone.

Finalize accepts a finished run: it sets the state ``finalized`` (after which
rollback is refused) and then deletes the saved copies. Setting the state
first means an interrupted finalize can never leave a rollback that would
find its saved copies gone; finalizing again finishes the deleting.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from omnifs.catalog.migrations import Migration, MigrationItem, Migrations
from omnifs.providers import InvalidInput, OmnifsError, Provider

from ..copy_options import Options, retrying
from ..object_copy import copy_object
from .plan import Entry
from .planfile import MigrationPlan
from .sides import Sides, plan_id
from .verify import BATCH, LIST_CAP, bounded_map, head, sha256_of


class Refused(Exception):
    """An item that cannot be undone safely; the message is one line for the user."""


@dataclass(frozen=True)
class Undone:
    """What rollback did with one item."""

    key: str
    #: "removed", "restored", "source" (only the source came back), "" (nothing to do)
    did: str
    source_restored: bool = False
    error: str | None = None
    #: whether the item is now undone (marked rolled_back)
    undone: bool = False


@dataclass
class RollbackResult:
    counts: Counter = field(default_factory=Counter)
    errors: list[Undone] = field(default_factory=list)
    saved_removed: int = 0
    #: the migration's state afterwards
    state: str = ""

    def add(self, u: Undone) -> None:
        if u.error is not None:
            self.counts["failed"] += 1
            if len(self.errors) < LIST_CAP:
                self.errors.append(u)
            return
        if u.did:
            self.counts[u.did] += 1
        if u.source_restored:
            self.counts["sources"] += 1

    def lines(self) -> list[str]:
        out = [f"FAILED   {u.key}: {u.error}" for u in self.errors]
        if self.counts["failed"] > len(self.errors):
            out.append(f"... and {self.counts['failed'] - len(self.errors)} more")
        c = self.counts
        out.append(f"rolled back: {c['removed']} new removed, {c['restored']} restored from "
                   f"saved copies, {c['sources']} sources restored, {c['failed']} failed; "
                   f"{self.saved_removed} saved copies deleted; migration {self.state}")
        return out


def _one_line(e: BaseException) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0]


def _restore_source(sides: Sides, key: str, expected: str | None, options: Options) -> None:
    """Copy a moved object back to the source from the destination, checked; no-op when
    the source already holds it (a rollback run before)."""
    src, dst = sides.src, sides.dst
    sk, dk = sides.src_key(key), sides.dst_key(key)
    s = head(src, sk, options)
    if s is not None:
        have = s.sha256 or sha256_of(src, sk, options)
        if expected is None or have == expected:
            return
        raise Refused("the source holds another object now: nothing undone")
    d = head(dst, dk, options)
    if d is None:
        raise Refused("the source was deleted and the destination object is gone")
    want = expected or d.sha256
    if want is not None and d.sha256 is not None and d.sha256 != want:
        raise Refused("the destination object changed since the run: the source is not "
                      "restored from it")
    copy_object(dst, dk, src, sk, options=options, src_info=d)
    got = sha256_of(src, sk, options, side="src")
    if want is not None and got != want:
        # the destination still holds the object: only the bad copy goes
        retrying(lambda: src.delete(sk), options)
        raise Refused("the source copied back does not match the moved object's SHA-256")


def _remove_copy(sides: Sides, item: MigrationItem, entry: Entry | None,
                 options: Options) -> bool:
    """Remove the object a ``copy`` created; False when there is none (or not ours)."""
    dk = sides.dst_key(item.key)
    d = head(sides.dst, dk, options)
    if d is None:
        return False
    if item.state == "done":
        if item.sha256 and d.sha256 and d.sha256 != item.sha256:
            raise Refused("the destination object changed since the run: left in place")
    else:
        # a run stopped between its upload and its catalog write: remove only the
        # object that is exactly the source's
        want = item.sha256
        if want is None:
            s = head(sides.src, sides.src_key(item.key), options)
            want = s.sha256 if s is not None else None
        want = want or (entry.sha256 if entry is not None else None)
        if want is None or d.sha256 != want:
            return False
    retrying(lambda: sides.dst.delete(dk), options)
    return True


def _restore_saved(dst: Provider, saved: str, dk: str, done: bool, options: Options) -> bool:
    """Copy the saved destination object back over ``dk``, its bytes checked; False when an
    unfinished item has no saved copy yet (the run saves before it replaces)."""
    if not saved.startswith("copy:"):
        raise Refused(f"the replaced object was saved as {saved!r}: only copies under "
                      ".omnifs/migrations/ can be restored")
    sk = saved[len("copy:"):]
    s = head(dst, sk, options)
    if s is None:
        if not done:
            return False
        raise Refused(f"the saved copy {sk} is gone")
    want = s.sha256 or sha256_of(dst, sk, options)
    copy_object(dst, sk, dst, dk, options=options, src_info=s)
    if sha256_of(dst, dk, options) != want:
        raise Refused("the restored object's SHA-256 differs from the saved copy's")
    return True


def undo_item(sides: Sides, mid: str, item: MigrationItem, entry: Entry | None,
              options: Options | None = None) -> Undone:
    """Undo one item (see the module docstring); errors come back in ``Undone.error``."""
    options = options or Options()
    done = item.state == "done"
    try:
        restored_source = False
        if item.source_deleted:
            expected = item.sha256 or (entry.sha256 if entry is not None else None)
            _restore_source(sides, item.key, expected, options)
            restored_source = True
        did = ""
        if item.action == "copy":
            did = "removed" if _remove_copy(sides, item, entry, options) else ""
        elif item.action in ("overwrite", "delete"):
            dk = sides.dst_key(item.key)
            # not recorded: a run stopped between saving and its catalog write left the
            # copy at the key the CONTRACT fixes
            saved = item.saved or f"copy:{sides.saved_key(mid, item.key)}"
            if _restore_saved(sides.dst, saved, dk, done and bool(item.saved), options):
                did = "restored"
            elif done:
                raise Refused("no saved copy of the replaced object was recorded")
        return Undone(item.key, did, restored_source,
                      undone=done or bool(did) or restored_source)
    except Refused as e:
        return Undone(item.key, "", error=str(e))
    except OmnifsError as e:
        return Undone(item.key, "", error=_one_line(e))


def _migration(plan: MigrationPlan, migrations: Migrations) -> Migration:
    m = migrations.get(plan_id(plan))
    if m is None:
        raise InvalidInput("no run of this plan is recorded in the catalog: nothing to undo "
                           "or accept")
    return m


def rollback(plan: MigrationPlan, sides: Sides, migrations: Migrations, *, parallel: int = 8,
             options: Options | None = None,
             on_undo: Callable[[Undone], None] | None = None) -> RollbackResult:
    """Undo the plan's run at the destination (and a move's at the source)."""
    options = options or Options()
    m = _migration(plan, migrations)
    if m.state == "finalized":
        raise InvalidInput(f"migration {m.id} was finalized: its saved copies are gone and it "
                           "can no longer be rolled back")
    mid = m.id
    entries = {e.key: e for e in plan.entries}
    result = RollbackResult()
    todo = (i for i in migrations.items(mid) if not i.rolled_back)
    batch: list[tuple[str, dict]] = []
    for u in bounded_map(lambda i: undo_item(sides, mid, i, entries.get(i.key), options),
                         todo, parallel):
        result.add(u)
        if on_undo is not None:
            on_undo(u)
        if u.undone and u.error is None:
            fields: dict = {"rolled_back": 1}
            if u.source_restored:
                fields["source_deleted"] = 0
            batch.append((u.key, fields))
        if len(batch) >= BATCH:
            migrations.update_items(mid, batch)
            batch.clear()
    if batch:
        migrations.update_items(mid, batch)
    # the saved copies last, so a rerun still finds those it needs: all of them once every
    # item is undone, else those of the undone items
    if result.counts["failed"] == 0:
        result.saved_removed = _delete_saved(sides, mid, parallel, options)
        migrations.set_state(mid, "rolled_back")
    else:
        saved = (i.saved[len("copy:"):] for i in migrations.items(mid)
                 if i.rolled_back and i.saved and i.saved.startswith("copy:"))
        result.saved_removed = sum(1 for _ in bounded_map(
            lambda k: retrying(lambda: sides.dst.delete(k), options), saved, parallel))
    result.state = migrations.get(mid).state  # type: ignore[union-attr]
    return result


def finalize(plan: MigrationPlan, sides: Sides, migrations: Migrations, *, force: bool = False,
             parallel: int = 8, options: Options | None = None) -> int:
    """Accept the run: state ``finalized``, then the saved copies deleted (how many)."""
    options = options or Options()
    m = _migration(plan, migrations)
    if m.state == "rolled_back":
        raise InvalidInput(f"migration {m.id} was rolled back: there is nothing to finalize")
    if m.state != "finalized":
        if any(i.rolled_back for i in migrations.items(m.id)):
            raise InvalidInput(f"migration {m.id} was partly rolled back: finish it with "
                               "`omnifs migrate rollback`")
        counts = migrations.counts(m.id)
        pending = sum(s.get("pending", {}).get("objects", 0) for s in counts.values())
        failed = sum(s.get("failed", {}).get("objects", 0) for s in counts.values())
        if (m.state != "done" or pending or failed) and not force:
            raise InvalidInput(f"the run is not finished (state {m.state}: {pending} pending, "
                               f"{failed} failed): run `omnifs migrate run` again, or "
                               "finalize with --force")
        if plan.mode == "move":
            unverified = sum(1 for i in migrations.items(m.id, states=["done"])
                             if i.verified != "ok")
            if unverified:
                raise InvalidInput(f"{unverified} moved object{'s' * (unverified != 1)} not "
                                   "verified: run `omnifs migrate verify` first")
        migrations.set_state(m.id, "finalized")
    return _delete_saved(sides, m.id, parallel, options)


def _delete_saved(sides: Sides, mid: str, parallel: int, options: Options) -> int:
    """Delete every copy saved for the migration at the destination; how many there were."""
    dst = sides.dst
    listed = retrying(lambda: [i.key for i in dst.list(sides.saved_prefix(mid), metadata=False)
                               if not i.is_prefix], options)
    return sum(1 for _ in bounded_map(lambda k: retrying(lambda: dst.delete(k), options),
                                      listed, parallel))
