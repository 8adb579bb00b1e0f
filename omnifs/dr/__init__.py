"""Disaster recovery: backups of the namespace to other stores, restores, retention, drills.

* ``config``: ``[dr]`` and ``[[dr.backups]]`` in omnifs.toml (targets, schedules, retention);
* ``crypto``: AES-256-GCM of backup objects (``cryptography``) and the key file;
* ``target``: one backup target's layout, objects written and read back checked;
* ``manifest``: a backup's tree (from a catalog copy) with every file's SHA-256;
* ``backup``: one backup (catalog snapshot + the content the target lacks);
* ``restore``: a file, a tree or everything as it was, locally or in place;
* ``fresh``: ... or into a fresh store: the objects and a catalog snapshot, for an import;
* ``when``: points in time as typed, and the backup holding one;
* ``retention``: which backups a policy keeps (pure); ``prune``: forgetting the rest;
* ``drill``: a restore into scratch, verified and timed, as a report;
* ``state``: the last backup and drill of each target, in the catalog's meta.
"""
