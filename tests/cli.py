"""Run the real ``omnifs`` command in a subprocess, and write configs for it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from omnifs.providers import ProviderSettings

OMNIFS = [sys.executable, "-m", "omnifs"]


def run(*args: str, config: Path | None = None, env: dict | None = None, input: bytes | None = None,
        timeout: float = 120, check: bool = False) -> subprocess.CompletedProcess:
    argv = [*OMNIFS, *(["--config", str(config)] if config else []), *args]
    full_env = {**os.environ, **(env or {})}
    if config:
        full_env.pop("OMNIFS_CONFIG", None)
    proc = subprocess.run(argv, capture_output=True, env=full_env, input=input, timeout=timeout,
                          cwd=Path(__file__).resolve().parent.parent, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"omnifs {' '.join(args)} exited {proc.returncode}: "
                             f"{proc.stderr.decode(errors='replace')}")
    return proc


def toml_table(s: ProviderSettings) -> str:
    lines = [f"[providers.{s.name}]"]
    for key in ("uri", "endpoint", "region", "access_key", "secret_key", "connection_string",
                "account_url", "credentials_file", "timeout"):
        value = getattr(s, key)
        if value is not None:
            lines.append(f"{key} = {value!r}" if isinstance(value, float) else f'{key} = "{value}"')
    return "\n".join(lines) + "\n"


def write_config(path: Path, providers: list[ProviderSettings], extra: str = "") -> Path:
    body = f"[replication]\ncopies = {min(2, len(providers))}\n\n" + "\n".join(
        toml_table(s) for s in providers) + extra
    path.write_text(body)
    path.chmod(0o600)
    return path


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The stderr of a failed command: must be exactly one line, no traceback."""
    err = proc.stderr.decode(errors="replace").strip()
    assert proc.returncode != 0, "expected a failure"
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    return err
