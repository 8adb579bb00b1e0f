"""Copying a tree of objects (a prefix) between two stores: ``copy_tree`` and ``sync``.

A tree copy lists both sides (without user metadata: S3 would HEAD every
object for it), files each source object as copy, skip or check
(:mod:`.sync_plan`) and hands the copies to a pool of
:func:`~omnifs.object_copy.copy_object` workers while the source listing is
still arriving. Pairs that names, sizes and native checksums cannot decide
are headed on both sides. Reruns skip objects that already arrived whole
(see ``omnifs.sync_plan.compare``). ``delete=True`` makes it a sync: extra
destination objects are removed, and only when every copy succeeded.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from omnifs.providers import InvalidInput, NotFound, ObjectInfo, OmnifsError, Provider, Unavailable

from .copy_options import Options, retrying, sleep_backoff, warn_once
from .object_copy import copy_object
from .progress import ProgressCallback, Snapshot, Stats
from .same_store import key_in, same_store
from .sync_plan import Filter, Plan, add_deletes, build_plan, decide, settle


@dataclass
class Failure:
    key: str
    error: str

    def __str__(self) -> str:
        return self.error


@dataclass
class Result:
    plan: Plan | None = None
    copied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    stats: Snapshot = field(default_factory=Snapshot)
    #: keys copied server-side (no bytes through this machine)
    server_side: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def dir_prefix(prefix: str) -> str:
    """A tree prefix names a "directory": ``a/b`` lists ``a/b/...``, never ``a/bc``."""
    prefix = prefix.strip("/")
    return prefix + "/" if prefix else ""


def _listing(p: Provider, prefix: str, options: Options) -> dict[str, ObjectInfo]:
    def run() -> dict[str, ObjectInfo]:
        out = {}
        # names, sizes and native checksums decide most pairs; settle() heads the rest
        for info in p.list(prefix, recursive=True, metadata=False):
            if not info.is_prefix and info.key.startswith(prefix) and info.key != prefix:
                out[info.key[len(prefix):]] = info
        return out

    try:
        return retrying(run, options)
    except NotFound:
        return {}


def plan_tree(src: Provider, src_prefix: str, dst: Provider, dst_prefix: str, *,
              options: Options | None = None, filt: Filter | None = None, delete: bool = False,
              overwrite: bool = False) -> Plan:
    """What a tree copy/sync would do; heads both sides where listings cannot decide."""
    options = options or Options()
    sp, dp = dir_prefix(src_prefix), dir_prefix(dst_prefix)
    with ThreadPoolExecutor(2) as pool:
        fs = pool.submit(_listing, src, sp, options)
        fd = pool.submit(_listing, dst, dp, options)
        s_list, d_list = fs.result(), fd.result()
    plan = build_plan(s_list, d_list, delete=delete, filt=filt, overwrite=overwrite)
    if plan.undecided:
        def refresh(act):
            s = retrying(lambda: src.head(sp + act.rel), options)
            d = retrying(lambda: dst.head(dp + act.rel), options)
            return act, s, d

        with ThreadPoolExecutor(max(1, options.checkers)) as pool:
            settle(plan, list(pool.map(refresh, plan.undecided)))
    return plan


def copy_tree(src: Provider, src_prefix: str, dst: Provider, dst_prefix: str, *,
              options: Options | None = None, filt: Filter | None = None, delete: bool = False,
              dry_run: bool = False, overwrite: bool = False,
              progress: ProgressCallback | None = None) -> Result:
    """Copy what is missing or different under ``src_prefix`` to ``dst_prefix``.

    Listings skip user metadata (``list(metadata=False)``: S3 would HEAD every
    object for it); each copy takes the source's metadata from its own read,
    and only pairs that size and native checksums cannot decide are headed.
    Copies start while the source listing is still arriving.

    Never raises for one object's failure: those are in ``Result.failures``.
    Extra destination objects are deleted only with ``delete`` and only when
    every copy succeeded (a half-failed sync must not also lose data).
    """
    options = options or Options()
    filt = filt or Filter()
    if src_prefix and dst_prefix and same_store(src, dst):
        a = key_in(dst, src, dir_prefix(src_prefix)) or ""
        b = dir_prefix(dst_prefix)
        if a and (a.startswith(b) or b.startswith(a)):
            raise InvalidInput("source and destination trees overlap", provider=dst.name,
                               key=dst_prefix)
    stats = Stats(progress)
    if dry_run:
        plan = plan_tree(src, src_prefix, dst, dst_prefix, options=options, filt=filt,
                         delete=delete, overwrite=overwrite)
        result = Result(plan=plan, skipped=[a.rel for a in plan.skips])
        result.stats = stats.snapshot()
        return result
    sp, dp = dir_prefix(src_prefix), dir_prefix(dst_prefix)
    plan = Plan()
    result = Result(plan=plan)
    lock = threading.Lock()
    server_side = options.server_side and same_store(src, dst)

    def one(act) -> None:
        try:
            copy_object(src, sp + act.rel, dst, dp + act.rel, options=options, stats=stats,
                        src_info=act.src)
        except OmnifsError as e:
            fail(act.rel, str(e))
            return
        except Exception as e:  # noqa: BLE001 - a provider bug must not stop the other objects
            fail(act.rel, f"{src.name}: {sp + act.rel}: internal error: {type(e).__name__}: {e}")
            return
        with lock:
            result.copied.append(act.rel)
            if server_side:
                result.server_side.append(act.rel)
        stats.done(act.rel)

    def fail(rel: str, text: str) -> None:
        with lock:
            result.failures.append(Failure(rel, text.splitlines()[0] if text else "failed"))
        stats.fail(rel)

    with ThreadPoolExecutor(max(1, options.transfers), thread_name_prefix="copy") as pool:
        def start(act) -> None:
            if act.op == "copy":
                stats.planned(1, act.size)
                pool.submit(one, act)
            elif act.op == "skip":
                stats.skip(act.rel, act.size)
            # "check": started (or skipped) once settle() has decided it

        with ThreadPoolExecutor(1, thread_name_prefix="list-dst") as lister:
            d_future = lister.submit(_listing, dst, dp, options)
            s_list = _stream_listing(src, sp, options, d_future, filt, plan, overwrite, start)
            d_list = d_future.result()
        if plan.undecided:
            undecided = list(plan.undecided)

            def refresh(act):
                s = retrying(lambda: src.head(sp + act.rel), options)
                d = retrying(lambda: dst.head(dp + act.rel), options)
                return act, s, d

            with ThreadPoolExecutor(max(1, options.checkers)) as checkers:
                decided = list(checkers.map(refresh, undecided))
            before = {id(a) for a in plan.copies}
            settle(plan, decided)
            for act in plan.copies:
                if id(act) not in before:
                    start(act)
            settled = {a.rel for a in undecided}
            for act in plan.skips:
                if act.rel in settled:
                    start(act)
    plan.copies.sort(key=lambda a: a.rel)
    plan.skips.sort(key=lambda a: a.rel)
    result.skipped = [a.rel for a in plan.skips]
    add_deletes(plan, s_list, d_list, delete=delete, filt=filt)

    if plan.deletes and not result.failures:
        def remove(act) -> None:
            try:
                retrying(lambda: dst.delete(dp + act.rel), options)
            except OmnifsError as e:
                fail(act.rel, str(e))
                return
            with lock:
                result.deleted.append(act.rel)
            stats.deleted(act.rel)

        with ThreadPoolExecutor(max(1, options.checkers)) as pool:
            list(pool.map(remove, plan.deletes))
    elif plan.deletes:
        warn_once(f"{dst.name}: not deleting {len(plan.deletes)} extra object(s) because some "
                  "copies failed")
    result.copied.sort()
    result.stats = stats.snapshot()
    stats.end()
    return result


def _stream_listing(src: Provider, sp: str, options: Options, d_future, filt: Filter, plan: Plan,
                    overwrite: bool, start) -> dict[str, ObjectInfo]:
    """List the source, filing each object into ``plan`` as soon as the destination listing is in.

    Entries that arrive before the destination listing wait in a list; a
    listing that fails transiently is restarted and the keys already seen
    are not filed twice.
    """
    seen: dict[str, ObjectInfo] = {}
    waiting: list[str] = []
    d_list: dict[str, ObjectInfo] | None = None

    def file_one(rel: str) -> None:
        assert d_list is not None
        start(decide(plan, rel, seen[rel], d_list.get(rel), overwrite=overwrite))

    attempt = 0
    while True:
        try:
            # no metadata: each copy takes it from its own GET (object_copy._described)
            for info in src.list(sp, recursive=True, metadata=False):
                if info.is_prefix or not info.key.startswith(sp) or info.key == sp:
                    continue
                rel = info.key[len(sp):]
                if rel in seen:
                    continue
                seen[rel] = info
                if not filt.wants(rel):
                    continue
                if d_list is None and d_future.done():
                    d_list = d_future.result()
                    for w in waiting:
                        file_one(w)
                    waiting.clear()
                if d_list is None:
                    waiting.append(rel)
                else:
                    file_one(rel)
            break
        except NotFound:
            break
        except OmnifsError as e:
            if not e.retry_now or attempt >= options.retries:
                raise
            sleep_backoff(options, attempt)
            attempt += 1
    if d_list is None:
        d_list = d_future.result()
    for w in waiting:
        file_one(w)
    return seen


def sync(src: Provider, src_prefix: str, dst: Provider, dst_prefix: str, **kw) -> Result:
    """``copy_tree`` of what is missing or different; ``delete=True`` removes extras."""
    return copy_tree(src, src_prefix, dst, dst_prefix, **kw)


def check_reachable(p: Provider, what: str) -> None:
    """Fail early and in one line when a store cannot be listed at all."""
    try:
        next(iter(p.list("", recursive=False)), None)
    except OmnifsError:
        raise
    except Exception as e:  # noqa: BLE001
        raise Unavailable(f"cannot reach the {what}: {type(e).__name__}", provider=p.name) from None
