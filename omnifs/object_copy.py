"""Copying one object between any two stores: streamed, verified, retried.

How one object travels:

* Same store (same provider class, bucket and connection settings, see
  :mod:`.same_store`) that can copy (:func:`.fallbacks.server_copy`): the
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
down); an integrity mismatch removes the destination object and retries
once.
"""

from __future__ import annotations

import dataclasses
import io
import logging

from omnifs.providers import (
    META_MTIME,
    META_SHA256,
    IntegrityError,
    ObjectInfo,
    OmnifsError,
    Provider,
)
from omnifs.providers.base import read_info

from .copy_options import MiB, Options, retrying, sleep_backoff, warn_once
from .fallbacks import (
    WriteCheck,
    checked_write,
    native_expect,
    records_in_place,
    server_copy,
    tier_for,
)
from .progress import Stats
from .same_store import key_in, server_id, unwrapped
from .streams import Prefetch, Verifier

log = logging.getLogger("omnifs.transfer")


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
    return retrying(lambda: src.head(key), options)


def copy_object(src: Provider, src_key: str, dst: Provider, dst_key: str, *,
                options: Options | None = None, stats: Stats | None = None,
                src_info: ObjectInfo | None = None,
                check: WriteCheck | None = None) -> ObjectInfo:
    """Copy one object; raise the last OmnifsError when it could not be copied whole.

    ``src_info`` may come from ``list(metadata=False)``: the metadata is then
    taken from the source read's response (or a head when it does not say).
    ``check``: what the destination key must hold before (omnifs/fallbacks.py; a
    server-side copy compares first); PreconditionFailed when it does not.
    """
    options = options or Options()
    stats = stats or Stats()
    info = src_info
    if info is None:
        info = retrying(lambda: src.head(src_key), options)
    attempt = 0
    integrity_retried = False
    while True:
        sent = [0]
        try:
            return _copy_once(src, src_key, dst, dst_key, info, options, stats, sent,
                              check or WriteCheck())
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
            sleep_backoff(options, attempt)
            attempt += 1


def _delete_quietly(p: Provider, key: str, options: Options) -> None:
    try:
        retrying(lambda: p.delete(key), options)
    except OmnifsError as e:
        log.warning("%s (could not remove the bad copy)", e)


def _metadata_for(info: ObjectInfo) -> dict[str, str]:
    meta = dict(info.metadata)
    if META_MTIME not in meta and info.last_modified is not None:
        meta[META_MTIME] = repr(float(info.last_modified))
    return meta


def _copy_once(src: Provider, src_key: str, dst: Provider, dst_key: str, info: ObjectInfo,
               options: Options, stats: Stats, sent: list[int], check: WriteCheck) -> ObjectInfo:
    def on_bytes(n: int) -> None:
        sent[0] += n
        stats.add_bytes(n, src_key)

    if server_copy(src, dst, options.server_side):
        inner_key = key_in(src, dst, dst_key)
        if inner_key is not None:
            if not info.metadata_known:
                info = retrying(lambda: src.head(src_key), options)
            meta = _metadata_for(info)
            # pass metadata only to add the mtime: None lets the store keep everything verbatim
            out = checked_write(dst, dst_key, dataclasses.replace(check, compare_first=True),
                                lambda: src.copy(src_key, inner_key,
                                                 None if meta == info.metadata else meta))
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
            out = checked_write(dst, dst_key, check, lambda **cond: dst.write(
                dst_key, io.BytesIO(data), len(data), meta, info.content_type, **cond))
            return _finish(src, dst, dst_key, info, meta, out, options)
    if not info.metadata_known:
        info = retrying(lambda: src.head(src_key), options)
    meta = _metadata_for(info)
    expect = native_expect(src, info)

    prepass = False
    if info.sha256 is None and _wants_prepass(src, dst, options):
        meta[META_SHA256] = _hash_source(src, src_key, info, options, dst)
        expect = {"sha256": meta[META_SHA256]}
        prepass = True

    reader = _prefetch(src, src_key, info, options, dst)
    out, v = upload_checked(reader, info.size, expect, dst, dst_key, meta, info.content_type,
                            on_bytes=on_bytes, check=check, **where)
    if info.sha256 is None and not prepass:
        meta[META_SHA256] = v.digest()
        out = _record_sha(dst, dst_key, meta, out)
    return _finish(src, dst, dst_key, info, meta, out, options)


def upload_checked(reader, size: int, expect: dict[str, str], dst: Provider, dst_key: str,
                   meta: dict[str, str], content_type: str | None = None, *,
                   on_bytes=None, provider: str, key: str,
                   check: WriteCheck | None = None) -> tuple[ObjectInfo, Verifier]:
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
            out = checked_write(dst, dst_key, check or WriteCheck(), lambda **cond: dst.write(
                dst_key, v, size, meta, content_type, **cond))
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
        v = Verifier(f, size=info.size, expect=native_expect(src, info), on_bytes=on_bytes,
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
    if not records_in_place(dst):
        return True
    if options.hash_mode in ("prepass", "record"):
        return options.hash_mode == "prepass"
    if unwrapped(src).location.scheme == "file":
        return True
    return dst.capabilities.self_copy_rewrites


def _window(src: Provider, dst: Provider | None, options: Options) -> int | None:
    """Drainable ranged windows only where a stalled GET could block the destination.

    That is when both sides talk to the same server (one that may serve a
    request at a time), or when there is no destination (a pre-pass). Else a
    single streamed GET: fewer requests, and no per-request cost that grows
    with the object (see ``streams.Prefetch``).
    """
    if unwrapped(src).location.scheme == "file":
        return None
    if dst is not None:
        a, b = server_id(src), server_id(dst)
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
    expect = native_expect(src, info)
    if unwrapped(src).location.scheme == "file":
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
        warn_once(f"{dst.name}: could not record the SHA-256 in metadata after upload ({e}); "
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
            warn_once(f"{dst.name}: cannot keep metadata {', '.join(lost)}")
    _keep_tier(dst, dst_key, info, options)
    return out


def _keep_tier(dst: Provider, key: str, info: ObjectInfo, options: Options) -> None:
    """With ``--keep-tier``: the destination's tier of the same access class (policy/tiers.py)."""
    if not options.keep_tier or not info.tier:
        return
    tier = tier_for(dst, info.tier)
    if tier is None:
        known = ", ".join(dst.capabilities.tiers) or "none"
        warn_once(f"{dst.name}: cannot keep tier {info.tier!r} (this store has: {known})")
        return
    if tier != info.tier:
        warn_once(f"{dst.name}: tier {info.tier!r} kept as {tier!r}")
    dst.set_tier(key, tier)
