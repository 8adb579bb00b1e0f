"""The FUSE layer: omnifs's namespace as a POSIX directory tree (pyfuse3 + trio).

The handlers: ``operations`` (the class pyfuse3 calls, one handler per FUSE
request) combines ``names`` (the tree: lookup, readdir, mkdir, link,
unlink, rename), ``attributes`` (getattr, setattr, statfs, xattrs) and
``contents`` (open, read, write, flush, release), built on ``uploads``
(publishing staged files at close or in the background, recovery,
shutdown) and ``handler_base`` (the inode, handle and open-file tables).
Around them: ``staging`` (write staging files and their upload),
``fuse_errors`` (the one errno mapping), ``mount`` (lifecycle).

The read path, in the order a read meets it: ``reader`` (the mount's reader:
inode and replicas to a file reference), ``readhandle`` (one open file's
blocks in memory), ``readahead`` (the pure read-ahead planner), ``streamer``
(one ranged GET per sequential run), ``blocks`` (the block engine: disk
cache, one shared fetch per block), ``replicas`` (the fastest replica,
hedged and failed over), ``blockpool`` (reused block buffers) and
``staging_fill`` (a whole file into a staging file before a write).
"""
