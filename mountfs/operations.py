"""One handler per FUSE request, answered from the catalog and staging files.

:class:`Operations` is what pyfuse3 calls. It combines the handler groups,
each in its own module:

* :mod:`.names`: lookup, readdir, mkdir, mknod, symlink, link, unlink,
  rmdir, rename (the tree of names);
* :mod:`.attributes`: getattr, setattr, statfs, access and the xattrs;
* :mod:`.contents`: open, create, read, write, flush, fsync, fallocate,
  release (file contents through staging files);

over :mod:`.uploads` (publishing staged files at close or in the
background, recovery and shutdown) and :mod:`.handler_base` (the inode,
handle and open-file tables every handler shares).

Caveats, honestly:

* Hard links are real (link(2) on anything but a directory). An inode's
  bytes are stored once per provider, under the key of its *primary* name
  (the first one; plain layout). Extra names exist only in the catalog.
  Unlinking or renaming the primary name while other links remain promotes
  the oldest remaining link to primary (or takes the new name) and queues a
  ``move`` of the objects to that path, like any rename: another tool reading
  the bucket sees the file under one of its current names once the queue ran.
* ``flock``/``fcntl`` locks are the kernel's and local to this host (``omnifs
  flock`` holds a lock across hosts: docs/multi-mount.md).
* atime is not updated by reads (like ``noatime``); explicit ``touch -a`` works.
* Renames and deletes change the catalog at once; the objects in the stores
  follow through queued work (``omnifs replicate --now`` or the daemon).
* Changing only mtime/mode after close (``touch -d``, ``chmod``) updates the
  catalog; the stores' ``omnifs_mtime`` metadata follows on the next write.
"""

from __future__ import annotations

from .attributes import AttributeHandlers
from .contents import ContentHandlers
from .names import NameHandlers


class Operations(NameHandlers, AttributeHandlers, ContentHandlers):
    """The mount's pyfuse3 operations: ``Operations(config, catalog, stores, *, writeback,
    read_via)``; :meth:`recover` before serving, :meth:`run_uploads` in the mount's
    nursery, :meth:`shutdown` at unmount."""

    supports_dot_lookup = True
    enable_writeback_cache = False
