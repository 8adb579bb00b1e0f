"""Copying objects between any two stores: streamed, verified, retried, resumable.

The library behind ``omnifs cp`` and ``omnifs sync``; ``copy_object`` moves
one object, ``copy_tree`` a prefix (``delete=True`` makes it a sync).

How one object travels:

* Same store (same provider class, bucket and connection settings): the
  provider's server-side ``copy()``, no byte passes through this machine.
* Otherwise the source's reader feeds a bounded ``Prefetch`` queue, a
  ``Verifier`` hashes it on the way, and the destination's own ``write()``
  uploads it (in parallel parts for big objects). Memory per transfer is the
  prefetch queue plus the destination's in-flight parts.

The SHA-256 problem: every object omnifs writes must carry ``META_SHA256``,
but an S3/GCS/Azure upload takes its metadata before the first byte. Chosen:

* the source recorded a SHA-256: it goes into the metadata up front and the
  Verifier checks the bytes against it before the last byte is handed over,
  so a mismatch aborts the upload (nothing corrupt becomes visible);
* no SHA-256 recorded and the object is small (``small_object``, 8 MiB by
  default): read it into memory once, hash, check any native checksum, then
  upload with the hash. One read, bounded memory;
* no SHA-256 and big: stream it (checking a native md5/crc32c of the source
  when it reports one), then record the hash with a server-side
  copy-in-place of the destination object when the store can
  (``metadata_update`` or ``server_side_copy``); a store that can do neither
  gets a hashing pre-pass over the source (two reads, never two copies).

Failures: transient errors retry the object with exponential backoff and
jitter, except a timeout (``err.retry_now``: a store silent that long is
down); an integrity mismatch removes the destination object and retries once. Reruns skip objects that already
arrived whole (see ``omnifs.sync_plan.compare``).
"""

from __future__ import annotations

import io
import logging
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from omnifs.policy import tiers
from omnifs.providers import (
    META_MTIME,
    META_SHA256,
    IntegrityError,
    InvalidInput,
    NotFound,
    ObjectInfo,
    OmnifsError,
    Provider,
    Unavailable,
)
from omnifs.providers.base import read_info

from .progress import ProgressCallback, Snapshot, Stats
from .streams import Prefetch, Verifier
from .sync_plan import Filter, Plan, add_deletes, build_plan, decide, settle

log = logging.getLogger("omnifs.transfer")

MiB = 1024 * 1024


@dataclass
class Options:
    #: objects copied in parallel
    transfers: int = 4
    #: parallel head()/delete() calls while planning and pruning
    checkers: int = 8
    keep_tier: bool = False
    #: extra attempts of one object after a transient error
    retries: int = 3
    backoff: float = 0.25
    #: objects up to this size without a recorded SHA-256 are hashed in memory before upload
    small_object: int = 8 * MiB
    chunk: int = 4 * MiB
    #: prefetched chunks per transfer (memory bound: chunk * prefetch)
    prefetch: int = 2
    #: bytes per ranged read of the source (see streams.Prefetch)
    window: int = 8 * MiB
    #: allow the server-side copy between two providers over the same store
    server_side: bool = True
    #: how a big source without a recorded SHA-256 gets one: "auto" (see ``_wants_prepass``),
    #: "prepass" (hash the source first, then stream it) or "record" (stream, then copy in place)
    hash_mode: str = "auto"


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


class _Warnings:
    """Each thing a destination cannot keep is said once, not once per object."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def once(self, text: str) -> None:
        with self._lock:
            if text in self._seen:
                return
            self._seen.add(text)
        log.warning(text)


_WARN = _Warnings()


# -- same store detection ------------------------------------------------

_CONNECTION_FIELDS = ("endpoint", "region", "access_key", "connection_string", "account_url",
                      "credentials_file")


def _unwrapped(p: Provider) -> Provider:
    """The real store behind wrappers (fault injection, metrics), which keep it as ``inner``."""
    while isinstance(getattr(p, "inner", None), Provider):
        p = p.inner  # type: ignore[attr-defined]
    return p


def same_store(a: Provider, b: Provider) -> bool:
    """Can ``a.copy()`` reach ``b``'s objects? Same class, bucket and connection settings."""
    a, b = _unwrapped(a), _unwrapped(b)
    if type(a) is not type(b) or a.location.scheme != b.location.scheme:
        return False
    if a.location.scheme == "file":
        return True
    if a.location.bucket != b.location.bucket:
        return False
    return all(getattr(a.settings, f, None) == getattr(b.settings, f, None) for f in _CONNECTION_FIELDS)


def key_in(a: Provider, b: Provider, key: str) -> str | None:
    """``b``'s ``key`` expressed as a key of ``a`` (same store), or None when outside ``a``'s root."""
    if a.location.scheme == "file":
        full = os.path.normpath(os.path.join(b.location.path, key))
        root = os.path.normpath(a.location.path)
        if root == "/":
            return full.lstrip("/")
        return full[len(root) + 1:] if full.startswith(root + "/") else None
    full = b.object_name(key)
    base = a.location.path
    if not base:
        return full
    return full[len(base) + 1:] if full.startswith(base + "/") else None


# -- one object ----------------------------------------------------------

def _sleep_backoff(options: Options, attempt: int) -> None:
    time.sleep(options.backoff * (2 ** attempt) * (0.5 + random.random()))


def _retrying(fn, options: Options):
    """Call ``fn`` retrying transient errors with backoff (for heads, lists, deletes)."""
    attempt = 0
    while True:
        try:
            return fn()
        except OmnifsError as e:
            if not e.retry_now or attempt >= options.retries:
                raise
            _sleep_backoff(options, attempt)
            attempt += 1


def _described(src: Provider, key: str, listed: ObjectInfo, stream: object,
               options: Options) -> ObjectInfo:
    """The full info of an object a listing described without metadata.

    The open read's response usually says it all (S3 GET headers carry the
    user metadata): that saves the HEAD per object which made small-object
    copies from S3 twice as slow. Else one head().
    """
    got = read_info(stream)
    if got is not None and got.metadata_known:
        got.key = listed.key
        got.tier = got.tier or listed.tier
        return got
    return _retrying(lambda: src.head(key), options)


def copy_object(src: Provider, src_key: str, dst: Provider, dst_key: str, *,
                options: Options | None = None, stats: Stats | None = None,
                src_info: ObjectInfo | None = None) -> ObjectInfo:
    """Copy one object; raise the last OmnifsError when it could not be copied whole.

    ``src_info`` may come from ``list(metadata=False)``: the metadata is then
    taken from the source read's response (or a head when it does not say).
    """
    options = options or Options()
    stats = stats or Stats()
    info = src_info
    if info is None:
        info = _retrying(lambda: src.head(src_key), options)
    attempt = 0
    integrity_retried = False
    while True:
        sent = [0]
        try:
            return _copy_once(src, src_key, dst, dst_key, info, options, stats, sent)
        except IntegrityError:
            stats.undo_bytes(sent[0])
            _delete_quietly(dst, dst_key, options)
            if integrity_retried:
                raise
            integrity_retried = True
            log.info("%s: integrity mismatch, retrying once", src_key)
        except OmnifsError as e:
            stats.undo_bytes(sent[0])
            if not e.retry_now or attempt >= options.retries:
                raise
            _sleep_backoff(options, attempt)
            attempt += 1


def _delete_quietly(p: Provider, key: str, options: Options) -> None:
    try:
        _retrying(lambda: p.delete(key), options)
    except OmnifsError as e:
        log.warning("%s (could not remove the bad copy)", e)


def _metadata_for(info: ObjectInfo) -> dict[str, str]:
    meta = dict(info.metadata)
    if META_MTIME not in meta and info.last_modified is not None:
        meta[META_MTIME] = repr(float(info.last_modified))
    return meta


def _native_expect(info: ObjectInfo) -> dict[str, str]:
    """The check a source without a recorded SHA-256 is read against.

    crc32c before md5 when a store reports both (GCS): both catch the
    corruption a read can suffer, and crc32c costs ~30 GB/s of CPU where md5
    costs 0.7 GB/s, on two cores shared with the servers it is reading.
    """
    if info.sha256:
        return {"sha256": info.sha256}
    for algo in ("crc32c", "md5"):
        if info.checksums.get(algo):
            return {algo: info.checksums[algo]}
    return {}


def _copy_once(src: Provider, src_key: str, dst: Provider, dst_key: str, info: ObjectInfo,
               options: Options, stats: Stats, sent: list[int]) -> ObjectInfo:
    def on_bytes(n: int) -> None:
        sent[0] += n
        stats.add_bytes(n, src_key)

    if options.server_side and same_store(src, dst):
        inner_key = key_in(src, dst, dst_key)
        if inner_key is not None:
            if not info.metadata_known:
                info = _retrying(lambda: src.head(src_key), options)
            meta = _metadata_for(info)
            # pass metadata only to add the mtime: None lets the store keep everything verbatim
            out = src.copy(src_key, inner_key, None if meta == info.metadata else meta)
            on_bytes(info.size)
            _keep_tier(dst, dst_key, info, options)
            return out

    where = {"provider": src.name, "key": src_key}
    if info.size <= options.small_object:
        # small: one read into memory in this thread (no prefetch thread), hash and check,
        # then upload with the hash; only verified bytes ever reach the destination
        small = _read_small(src, src_key, info, options, on_bytes)
        if small is not None:
            data, info, sha = small
            meta = _metadata_for(info)
            meta[META_SHA256] = sha
            out = dst.write(dst_key, io.BytesIO(data), len(data), meta, info.content_type)
            return _finish(src, dst, dst_key, info, meta, out, options)
    if not info.metadata_known:
        info = _retrying(lambda: src.head(src_key), options)
    meta = _metadata_for(info)
    expect = _native_expect(info)

    prepass = False
    if info.sha256 is None and _wants_prepass(src, dst, options):
        meta[META_SHA256] = _hash_source(src, src_key, info, options, dst)
        expect = {"sha256": meta[META_SHA256]}
        prepass = True

    reader = _prefetch(src, src_key, info, options, dst)
    out, v = upload_checked(reader, info.size, expect, dst, dst_key, meta, info.content_type,
                            on_bytes=on_bytes, **where)
    if info.sha256 is None and not prepass:
        meta[META_SHA256] = v.digest()
        out = _record_sha(dst, dst_key, meta, out)
    return _finish(src, dst, dst_key, info, meta, out, options)


def upload_checked(reader, size: int, expect: dict[str, str], dst: Provider, dst_key: str,
                   meta: dict[str, str], content_type: str | None = None, *,
                   on_bytes=None, provider: str, key: str) -> tuple[ObjectInfo, Verifier]:
    """Upload ``size`` bytes from ``reader``, checked against ``expect`` on their way.

    The check fails the upload before its last byte is sent (an IntegrityError,
    or whatever the reader raised, rather than the destination's vaguer
    error about a broken body), so a wrong or short object is never stored.
    ``provider``/``key`` name the source in errors. The copy engine's one
    way of streaming bytes to a store; the replication executor sends a
    cached content through it too (omnifs/replication.py).
    """
    v = Verifier(reader, size=size, expect=expect, on_bytes=on_bytes, provider=provider, key=key)
    with v:
        try:
            out = dst.write(dst_key, v, size, meta, content_type)
        except BaseException as e:
            if v.error is not None and v.error is not e:
                raise v.error from None
            raise
        if not v._checked:
            v.check()  # the destination did not read to the end: it cannot be whole
    return out, v


def _read_small(src: Provider, key: str, info: ObjectInfo, options: Options,
                on_bytes) -> tuple[bytes, ObjectInfo, str] | None:
    """A small object read whole and checked (against its SHA-256 or native checksum):
    the bytes, the object's full info and their SHA-256.

    None when the read found it is no longer small (changed since listed).
    """
    f = src.open_read(key)
    try:
        if not info.metadata_known:
            info = _described(src, key, info, f, options)
            if info.size > options.small_object:
                return None
        v = Verifier(f, size=info.size, expect=_native_expect(info), on_bytes=on_bytes,
                     provider=src.name, key=key)
        data = v.read()
        while len(data) < info.size:  # readers may return short
            more = v.read(info.size - len(data))
            if not more:
                break
            data += more
        if not v._checked:
            v.check()
        return data, info, v.digest()
    finally:
        f.close()


def _wants_prepass(src: Provider, dst: Provider, options: Options) -> bool:
    """Hash the source in a first read rather than fix the metadata with a copy afterwards?

    Measured here for 1 GiB: hashing a local file 0.9 s, re-reading the GCS
    emulator 1.8 s or moto 1.3 s, against 6 s for moto to copy the object
    onto itself (and ~0 for Azurite). So: a local source is always hashed
    first; a remote one when the destination's copy-in-place rewrites the
    bytes. ``hash_mode="record"`` keeps the copy-in-place where a second
    read of the source costs egress money that the time saved is not worth.
    """
    if not (dst.capabilities.metadata_update or dst.capabilities.server_side_copy):
        return True
    if options.hash_mode in ("prepass", "record"):
        return options.hash_mode == "prepass"
    if _unwrapped(src).location.scheme == "file":
        return True
    return dst.capabilities.self_copy_rewrites


def _server_id(p: Provider) -> tuple[str, str] | None:
    """Which server answers ``p``'s requests, when its settings name one (emulators, MinIO)."""
    s = _unwrapped(p).settings
    if s.endpoint:
        return ("url", s.endpoint.rstrip("/"))
    if s.account_url:
        return ("url", s.account_url.rstrip("/"))
    if s.connection_string:
        for part in s.connection_string.split(";"):
            name, _, value = part.partition("=")
            if name.strip().lower() == "blobendpoint" and value:
                return ("url", value.rstrip("/").rsplit("/", 1)[0] if value.count("/") > 2 else value)
    return None


def _window(src: Provider, dst: Provider | None, options: Options) -> int | None:
    """Drainable ranged windows only where a stalled GET could block the destination.

    That is when both sides talk to the same server (one that may serve a
    request at a time), or when there is no destination (a pre-pass). Else a
    single streamed GET: fewer requests, and no per-request cost that grows
    with the object (see ``streams.Prefetch``).
    """
    if _unwrapped(src).location.scheme == "file":
        return None
    if dst is not None:
        a, b = _server_id(src), _server_id(dst)
        if a is None or a != b:
            return None
        return options.window
    return None


def _prefetch(src: Provider, key: str, info: ObjectInfo, options: Options,
              dst: Provider | None = None) -> Prefetch:
    return Prefetch(lambda start, end: src.open_read(key, start, end), size=info.size,
                    chunk=options.chunk, depth=options.prefetch, window=_window(src, dst, options),
                    provider=src.name, key=key, retries=options.retries, backoff=options.backoff)


def _hash_source(src: Provider, key: str, info: ObjectInfo, options: Options,
                 dst: Provider | None = None) -> str:
    """The source's SHA-256 from a first full read (checked against a native checksum too)."""
    expect = _native_expect(info)
    if _unwrapped(src).location.scheme == "file":
        # a plain file: big sequential reads, no prefetch thread (hashlib drops the GIL)
        v = Verifier(src.open_read(key), size=info.size, expect=expect, provider=src.name, key=key)
        step = 4 * MiB
    else:
        v = Verifier(_prefetch(src, key, info, options), size=info.size, expect=expect,
                     provider=src.name, key=key)
        step = options.chunk
    with v:
        while v.read(step):
            pass
        if not v._checked:
            v.check()
    return v.digest()


def _record_sha(dst: Provider, key: str, meta: dict[str, str], out: ObjectInfo) -> ObjectInfo:
    """Add the streamed SHA-256 to an uploaded object with a server-side copy onto itself."""
    try:
        return dst.copy(key, key, meta)
    except OmnifsError as e:
        _WARN.once(f"{dst.name}: could not record the SHA-256 in metadata after upload ({e}); "
                   "later syncs compare by size and mtime")
        return out


def check_stored_size(dst: Provider, dst_key: str, out: ObjectInfo | None, size: int) -> None:
    """IntegrityError when the store says it holds another size than was sent."""
    if out is not None and out.size and out.size != size:
        raise IntegrityError(f"destination holds {out.size} bytes after upload, source has {size}",
                             provider=dst.name, key=dst_key)


def _finish(src: Provider, dst: Provider, dst_key: str, info: ObjectInfo, meta: dict[str, str],
            out: ObjectInfo, options: Options) -> ObjectInfo:
    check_stored_size(dst, dst_key, out, info.size)
    if out is not None and out.metadata:
        lost = sorted(k for k in meta if k not in out.metadata)
        if lost:
            _WARN.once(f"{dst.name}: cannot keep metadata {', '.join(lost)}")
    _keep_tier(dst, dst_key, info, options)
    return out


def _keep_tier(dst: Provider, key: str, info: ObjectInfo, options: Options) -> None:
    """With ``--keep-tier``: the destination's tier of the same access class (policy/tiers.py)."""
    if not options.keep_tier or not info.tier:
        return
    tier = tiers.translate(info.tier, dst.capabilities.tiers)
    if tier is None:
        known = ", ".join(dst.capabilities.tiers) or "none"
        _WARN.once(f"{dst.name}: cannot keep tier {info.tier!r} (this store has: {known})")
        return
    if tier != info.tier:
        _WARN.once(f"{dst.name}: tier {info.tier!r} kept as {tier!r}")
    dst.set_tier(key, tier)


# -- trees ---------------------------------------------------------------

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
        return _retrying(run, options)
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
            s = _retrying(lambda: src.head(sp + act.rel), options)
            d = _retrying(lambda: dst.head(dp + act.rel), options)
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
            raise InvalidInput("source and destination trees overlap", provider=dst.name, key=dst_prefix)
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
                s = _retrying(lambda: src.head(sp + act.rel), options)
                d = _retrying(lambda: dst.head(dp + act.rel), options)
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
                _retrying(lambda: dst.delete(dp + act.rel), options)
            except OmnifsError as e:
                fail(act.rel, str(e))
                return
            with lock:
                result.deleted.append(act.rel)
            stats.deleted(act.rel)

        with ThreadPoolExecutor(max(1, options.checkers)) as pool:
            list(pool.map(remove, plan.deletes))
    elif plan.deletes:
        _WARN.once(f"{dst.name}: not deleting {len(plan.deletes)} extra object(s) because some copies failed")
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
            # no metadata: each copy takes it from its own GET (see _described)
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
            _sleep_backoff(options, attempt)
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
