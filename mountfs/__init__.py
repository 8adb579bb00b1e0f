"""The FUSE layer: omnifs's namespace as a POSIX directory tree (pyfuse3 + trio).

Modules: ``operations`` (one handler per FUSE request), ``staging`` (write
staging files and their upload), ``fuse_errors`` (the one errno mapping),
``mount`` (lifecycle).

The read path, in the order a read meets it: ``reader`` (the mount's reader:
inode and replicas to a file reference), ``readhandle`` (one open file's
blocks in memory), ``readahead`` (the pure read-ahead planner), ``streamer``
(one ranged GET per sequential run), ``blocks`` (the block engine: disk
cache, one shared fetch per block), ``replicas`` (the fastest replica,
hedged and failed over), ``blockpool`` (reused block buffers) and
``staging_fill`` (a whole file into a staging file before a write).
"""
