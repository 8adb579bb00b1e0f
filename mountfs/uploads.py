"""When a staged file's bytes reach the stores: at close or fsync, or in the background.

A close (or fsync, or a truncate nobody holds open) publishes the staging
file to a quorum of stores before it returns (:mod:`.publish`). When no
quorum takes it, the caller gets EIO and the bytes stay staged, fsynced,
queued for the background uploaders, which retry with backoff until a
store answers. In write-back mode a close queues the upload instead of
waiting for it (up to ``WRITEBACK_MAX`` at once) and the uploaders wait for
a quiet moment. After a crash :meth:`Uploads.recover` publishes what was
left staged; at unmount :meth:`Uploads.shutdown` publishes what is still
dirty.
"""

from __future__ import annotations

import logging
import os

import trio

from omnifs.providers.errors import OmnifsError

from .handler_base import HandlerBase
from .staging import OpenFile

log = logging.getLogger("omnifs.mount")

#: write-back mode: closes whose upload may be pending at once (more wait for their upload)
WRITEBACK_MAX = 10_000
#: seconds a closed file waits before its background upload: temp files renamed or
#: deleted right away (rsync, editors, tar's own rewrites) are uploaded once, at their
#: final name, and uploads do not compete with a burst of writes for the CPU
WRITEBACK_DELAY = 2.0
#: seconds before a failed upload is tried again in the background, doubling per failure...
UPLOAD_RETRY = 2.0
#: ... up to this (a store that answers again is used within about this long)
UPLOAD_RETRY_MAX = 15.0
#: write-back uploads wait for this many seconds without FUSE requests: a burst of
#: writes (tar x, cp -r) is not slowed by uploads competing for the CPU and the GIL,
#: like the kernel's own idle-time writeback ...
WRITEBACK_QUIET = 0.3
#: ... but never longer than this after the close (a mount that is never idle)
WRITEBACK_MAX_DELAY = 30.0


class Uploads(HandlerBase):
    """Publishing staged files now or later, and the mount's start and end."""

    # -- publishing --------------------------------------------------------------
    async def _publish(self, st: OpenFile) -> None:
        """Publish ``st`` now; when no quorum of stores takes it, the error reaches the caller
        (EIO) and the bytes stay staged, durable, for the background uploader."""
        self._publishing += 1
        try:
            async with st.lock:
                try:
                    await self.publisher.publish(st)
                except OmnifsError as e:
                    if not e.transient or not st.dirty:
                        raise
                    await self._make_durable(st)
                    self._retry_later(st)
                    raise
        finally:
            self._publishing -= 1

    async def _make_durable(self, st: OpenFile) -> None:
        """The staging file and its directory entry reach the disk (a crash keeps them)."""
        await trio.to_thread.run_sync(self.staging.sync, st.ino, st.fd)

    def _retry_later(self, st: OpenFile) -> None:
        """Queue a failed publish for the background uploader, backing off per failure."""
        n = self._failures[st.ino] = self._failures.get(st.ino, 0) + 1
        if n == 1:
            log.warning("%s stays staged until a store answers", self._name_of(st.ino))
        if st.ino not in self._queued:  # else the uploader retrying it queues it again
            self._queued.add(st.ino)
            self._uploads_send.send_nowait((st.ino, trio.current_time() + self._backoff(st.ino)))
        if st.opens <= 0 and st.fd is not None:
            os.close(st.fd)  # kept staged, not open: a later open reuses the staging file
            st.fd = None

    # -- write-back mode ------------------------------------------------------------
    def _defer(self, st: OpenFile) -> bool:
        """Write-back: queue the upload instead of waiting for it (bounded queue).

        The caller then makes the staging file durable before close returns:
        with ``inodes.staged = 1`` (committed at the first write) that is the
        promise write-back's success code makes.
        """
        if not self.writeback:
            return False
        if st.ino in self._queued:
            return True
        if len(self._queued) >= WRITEBACK_MAX:
            return False  # back-pressure: this close uploads itself
        self._queued.add(st.ino)
        self._uploads_send.send_nowait((st.ino, trio.current_time() + WRITEBACK_DELAY))
        return True

    async def run_uploads(self, workers: int = 4) -> None:
        """Background uploaders; run in the mount's nursery, in every mode.

        They upload what write-back closes left staged, and retry every
        publish that failed (no quorum of stores answered: the caller got
        EIO and the bytes stayed staged) with backoff until a store takes
        them, so the running mount catches up by itself once a store answers.

        Why write-back is still safe against kill -9: the staging file (fsynced)
        and ``inodes.staged = 1`` were written before close returned, and a
        remount uploads every staged file (:meth:`recover`). Only losing
        the local disk itself can lose a closed-but-not-uploaded file.
        """
        async with trio.open_nursery() as nursery:
            for _ in range(workers):
                nursery.start_soon(self._upload_worker, self._uploads_recv.clone())

    def _name_of(self, ino: int) -> str:
        return self.cat.ns.path_of(ino) or f"inode {ino} (unlinked)"

    def _backoff(self, ino: int) -> float:
        return min(UPLOAD_RETRY * 2 ** max(self._failures.get(ino, 1) - 1, 0), UPLOAD_RETRY_MAX)

    async def _upload_worker(self, recv) -> None:
        async for ino, ready_at in recv:
            await trio.sleep_until(ready_at)
            deadline = ready_at - WRITEBACK_DELAY + WRITEBACK_MAX_DELAY
            while len(self._queued) < WRITEBACK_MAX // 2:
                quiet_at = self.busy_at + WRITEBACK_QUIET
                now = trio.current_time()
                if now >= quiet_at or now >= deadline:
                    break
                await trio.sleep_until(min(quiet_at, deadline))
            st = self.open_files.get(ino)
            try:
                if st is not None and st.dirty:
                    await self._publish(st)
            except Exception as e:  # noqa: BLE001 - stays staged; retried below if it may work
                if not (isinstance(e, OmnifsError) and e.transient):
                    log.warning("%s stays staged, no store takes it (retried at the next "
                                "mount): %s", self._name_of(ino), e)
                    self._queued.discard(ino)
                    continue
                log.info("upload of %s failed, will retry: %s", self._name_of(ino), e)
                self._uploads_send.send_nowait((ino, trio.current_time() + self._backoff(ino)))
                continue
            self._queued.discard(ino)
            if self._failures.pop(ino, 0):
                log.warning("%s uploaded after all", self._name_of(ino))
            if st is not None and st.opens <= 0 and self.open_files.get(ino) is st:
                self._close_state(st)

    # -- lifecycle -------------------------------------------------------------
    async def recover(self) -> None:
        """After a crash: publish unfinished staging files, drop orphans.

        A file no quorum of stores takes now stays staged and is queued for
        :meth:`run_uploads`: the mount starts anyway, within about one
        ``timeout`` when the stores do not answer (later files skip the
        stores the first one found down).
        """
        # another live mount may hold orphans open and have files staged: leave them be
        alone = self.coherence.register() == 0
        for inode in self.cat.ns.orphans() if alone else ():
            self._discard(inode.id)
            self.cat.ns.delete(inode.id)
        staged = self.cat.ns.staged_ids()
        for ino in self.staging.inodes():
            if ino not in staged:
                self.staging.remove(ino)
        for ino in staged:
            if not self.staging.exists(ino):
                if alone:
                    self.cat.ns.update(ino, staged=0)
                continue
            st = self._state(ino)
            await self._ensure_staging(st)
            st.dirty = True
            st.marked = True
            try:
                await self._publish(st)
            except Exception as e:  # noqa: BLE001 - stays staged, queued for the uploader
                log.warning("could not upload unfinished file %s yet: %s",
                            self.cat.ns.path_of(ino), e)
                if st.fd is not None:
                    os.close(st.fd)
                    st.fd = None
                if ino not in self._queued:
                    self._retry_later(st)
                continue
            self._close_state(st)

    async def shutdown(self) -> None:
        """Publish what is still dirty (release may not come at unmount, write-back queue)."""
        for st in list(self.open_files.values()):
            if st.dirty:
                try:
                    await self._publish(st)
                except Exception as e:  # noqa: BLE001
                    log.warning("unmount: %s stays staged: %s", st.ino, e)
            await trio.lowlevel.checkpoint()
        await self.written.finish()
        for h in list(self.handles.values()):
            await self.reader.drop(h)
        await trio.to_thread.run_sync(self.reader.close)
        await self.access_log.close()  # the counts since the last flush
        await trio.to_thread.run_sync(self.guard.close)  # the audit's last batch and checkpoint
