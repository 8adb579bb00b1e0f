"""The FUSE layer: omnifs's namespace as a POSIX directory tree (pyfuse3 + trio).

Modules: ``operations`` (one handler per FUSE request), ``staging`` (write
staging files and their upload), ``readpath`` (the read seam the cache issue
replaces), ``fuse_errors`` (the one errno mapping), ``mount`` (lifecycle).
"""
