"""Copying objects between any two stores: streamed, verified, retried, resumable.

The library behind ``omnifs cp`` and ``omnifs sync``, and the replication
executor's way of moving bytes; ``copy_object`` moves one object,
``copy_tree`` a prefix (``delete=True`` makes it a sync). This module is the
copy engine's one import; its parts:

* :mod:`.copy_options`: :class:`Options`, and the retry and warn-once helpers;
* :mod:`.same_store`: whether two providers reach one store (server-side
  copy) or one server;
* :mod:`.object_copy`: one object, streamed through a ``Verifier`` or copied
  server-side, its SHA-256 recorded however the source came;
* :mod:`.tree_copy`: a prefix, planned from both listings
  (:mod:`.sync_plan`) and copied by a pool of workers.
"""

from __future__ import annotations

from .copy_options import Options
from .object_copy import check_stored_size, copy_object, upload_checked
from .same_store import key_in, same_store
from .tree_copy import Failure, Result, check_reachable, copy_tree, dir_prefix, plan_tree, sync

__all__ = [
    "Failure",
    "Options",
    "Result",
    "check_reachable",
    "check_stored_size",
    "copy_object",
    "copy_tree",
    "dir_prefix",
    "key_in",
    "plan_tree",
    "same_store",
    "sync",
    "upload_checked",
]
