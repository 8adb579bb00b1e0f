"""One ``omnifs bench run``: providers opened, a scenario run on all of them, the result
as one JSON-ready dict (see :mod:`.results`)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
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


def run(scenario: Scenario, subjects: list[Subject], *, quick: bool, repeats: int,
        profile: NetProfile | None, config_path: Path | None,
        progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run ``scenario`` (already made quick when ``quick``) on every subject."""
    run_id = uuid.uuid4().hex
    started = time.time()
    if scenario.kind == "mount":
        from .mountbench import run_mount

        profile = None  # the mount is another process: no profile reaches it

        rows = run_mount(scenario, subjects, run_id, repeats, config_path, progress)
    else:
        rows = run_objects(scenario, subjects, run_id, repeats, progress)
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
