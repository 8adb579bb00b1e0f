"""The FUSE layer: omnifs's namespace as a POSIX directory tree (pyfuse3 + trio).

Imports the core, ``omnifs.providers`` and ``omnifs.policy``, never the daemon.

The mount: ``mount`` (lifecycle: start, recover, serve, unmount),
``fuse_errors`` (the one errno mapping around every handler),
``catalog_wait`` (catalog writes never block the event loop), ``stores``
(the providers in worker threads, and the mount's view of their health),
``xattrs`` (the replicas xattr), ``guard`` (governance: WORM, legal hold and
residency refusals, and the audit records of every change), ``fallocate``
(fallocate(2), which pyfuse3 has no handler for), ``metrics`` (the mount's
/metrics on ``mount_port``), ``coherence`` (other mounts' and processes'
changes into this mount's caches, close-to-open, one publish of a file at a
time across mounts: docs/multi-mount.md).

The handlers: ``operations`` (the class pyfuse3 calls, one handler per FUSE
request) combines ``names`` (the tree: lookup, readdir, mkdir, link,
unlink, rename), ``attributes`` (getattr, setattr, statfs, xattrs) and
``contents`` (open, read, write, flush, release), built on ``uploads``
(publishing staged files at close or in the background, recovery,
shutdown) and ``handler_base`` (the inode, handle and open-file tables).

The write path, in the order a write meets it: ``space`` (room on local
disk), ``staging`` (staging files, where writes land), ``publish`` (upload
to ``write_quorum`` stores, catalog rows, queued replicate work), ``overwrite``
(one upload: conditional on what the catalog recorded at the key, a change
behind our back kept as a conflict file, a version set aside for ``[dr]``), ``quorum``
(the upload race that skips a hung store), ``written`` (published bytes
into the block cache).

The read path, in the order a read meets it: ``reader`` (the mount's reader:
inode and replicas to a file reference), ``readhandle`` (one open file's
blocks in memory), ``readahead`` (the pure read-ahead planner), ``streamer``
(one ranged GET per sequential run), ``blocks`` (the block engine: disk
cache, one shared fetch per block), ``replicas`` (the fastest replica,
hedged and failed over), ``blockpool`` (reused block buffers) and
``staging_fill`` (a whole file into a staging file before a write).
"""
