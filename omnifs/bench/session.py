"""One ``omnifs bench run``: providers opened, a scenario run on all of them, the result
as one JSON-ready dict (see :mod:`.results`)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from omnifs.config import Config
from omnifs.errors import InvalidInput
from omnifs.providers import ProviderSettings
from omnifs.targets import Resolver, Target

from . import results
from .netprofile import NetProfile
from .runner import Subject, run_objects
from .scenario import Scenario


def open_subjects(stack: ExitStack, config: Config, names: list[str],
                  profile: NetProfile | None, seed: int) -> list[Subject]:
    """Each ``--providers`` entry (a configured name, ``NAME:/prefix`` or a URI) opened."""
    resolver = stack.enter_context(Resolver(config))
    subjects = []
    for text in names:
        if text in config.providers:
            target = resolver.resolve(f"{text}:/")
        elif text.startswith("file://"):
            # the directory is the store (its root), not a key under file:///
            target = Target(resolver.provider(ProviderSettings(name=text, uri=text)), "")
        elif "://" in text or ":" in text:
            target = resolver.resolve(text)
        else:
            known = ", ".join(config.providers) or "none configured"
            raise InvalidInput(f"--providers: {text!r} is neither a configured provider "
                               f"({known}) nor a URI")
        root = target.key if not target.key or target.key.endswith("/") else target.key + "/"
        measured = target.provider if profile is None else profile.apply(target.provider, seed)
        subjects.append(Subject(text, target.provider, measured, root))
    if len({s.label for s in subjects}) != len(subjects):
        raise InvalidInput("--providers: a provider is named twice")
    return subjects


def _record(scenario: Scenario, run_id: str, started: float, rows: list, *, quick: bool,
            repeats: int, profile: NetProfile | None, subjects: list[Subject],
            config_path: Path | None) -> dict[str, Any]:
    return {
        "format": results.FORMAT, "version": results.VERSION, "run_id": run_id,
        "started": started, "finished": time.time(),
        "started_utc": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started)),
        "quick": quick, "repeats": repeats,
        "scenario": {**scenario.as_dict(), "digest": scenario.digest()},
        "profile": None if profile is None else profile.as_dict(),
        "providers": [{"name": s.label, "scheme": s.store.location.scheme} for s in subjects],
        "environment": results.environment(config_path),
        "results": [r.as_dict() for r in rows],
    }


def run(plans: list[Scenario], subjects: list[Subject], *, quick: bool, repeats: int,
        profile: NetProfile | None, config_path: Path | None,
        progress: Callable[[str], None] | None = None) -> Iterator[dict[str, Any]]:
    """Run every scenario of ``plans`` (already made quick when ``quick``) on every subject;
    yield one record per scenario as it is done. Object scenarios run one after another,
    then the mount scenarios together (one mount per provider and repeat), without the
    network profile: the mount is another process, which no profile reaches."""
    for scenario in plans:
        if scenario.kind == "objects":
            run_id, started = uuid.uuid4().hex, time.time()
            rows = run_objects(scenario, subjects, run_id, repeats, progress)
            yield _record(scenario, run_id, started, rows, quick=quick, repeats=repeats,
                          profile=profile, subjects=subjects, config_path=config_path)
    mounts = [s for s in plans if s.kind == "mount"]
    if mounts:
        from .mountbench import run_mounts

        run_id, started = uuid.uuid4().hex, time.time()
        by_name = run_mounts(mounts, subjects, run_id, repeats, progress)
        for scenario in mounts:
            yield _record(scenario, run_id, started, by_name[scenario.name], quick=quick,
                          repeats=repeats, profile=None, subjects=subjects,
                          config_path=config_path)
