"""Turn what a user typed (``s3://b/k``, ``file:///p``, ``aws-east:/k``, ``./dir``) into
(provider, key).

A bare URI needs no config file: its provider is built from the URI plus
the SDK's environment. When the config names a provider over the same
bucket, that provider's settings (endpoint, credentials) are used instead.
With ``local_paths`` (``cp`` and ``sync``), a plain path (relative, absolute
or ``~/...``) is the local file or directory it names, as with cp, rclone
and ``aws s3 cp``; ``NAME:path`` is a configured provider, so a local name
with a colon is written ``./NAME:path`` (or is taken as local when no
provider has that name and the path exists). Other commands keep asking for
a URI: ``omnifs rm -r bucket/x`` must not delete a local directory because
``s3://`` was forgotten.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from omnifs.providers import InvalidInput, Provider, ProviderSettings, open_provider, parse_uri

from .config import Config, absolute_file_uri

_NAMED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*):(?!//)(.*)$")


@dataclass(frozen=True)
class Target:
    provider: Provider
    #: the key (or key prefix) inside the provider; "" is the provider's root
    key: str

    def __str__(self) -> str:
        return f"{self.provider.name}:/{self.key}"


class Resolver:
    """Opens each provider once and hands out Targets; close() releases them all."""

    def __init__(self, config: Config | None = None):
        self.config = config or Config()
        self._open: dict[str, Provider] = {}

    def provider(self, settings: ProviderSettings) -> Provider:
        key = f"{settings.name}\0{settings.uri}"
        if key not in self._open:
            self._open[key] = open_provider(settings)
        return self._open[key]

    def named(self, name: str) -> Provider:
        settings = self.config.providers.get(name)
        if settings is None:
            known = ", ".join(self.config.providers) or "none configured"
            raise InvalidInput(f"unknown provider {name!r} (known: {known})")
        return self.provider(settings)

    def resolve(self, text: str, *, local_paths: bool = False) -> Target:
        """The provider and key ``text`` names; a trailing '/' stays on the key ("into").

        ``omnifs cp f s3://b/dir/`` then puts ``dir/f``, as ``aws s3 cp`` does.
        """
        t = self._resolve(text, local_paths)
        if text.endswith("/") and t.key and not t.key.endswith("/"):
            t = Target(t.provider, t.key + "/")
        return t

    def _resolve(self, text: str, local_paths: bool) -> Target:
        m = _NAMED.match(text)
        if m and "://" not in text:
            name, path = m.groups()
            if not local_paths or name in self.config.providers or not os.path.exists(text):
                return Target(self.named(name), path.lstrip("/"))
        if local_paths and "://" not in text:
            return self.local(text)
        loc = parse_uri(absolute_file_uri(text, Path.cwd()))
        if loc.scheme == "file":
            return Target(self._local_files(), loc.path.lstrip("/"))
        for settings in self.config.providers.values():
            ploc = parse_uri(settings.uri)
            if (ploc.scheme, ploc.bucket) != (loc.scheme, loc.bucket):
                continue
            if ploc.path and not (loc.path == ploc.path or loc.path.startswith(ploc.path + "/")):
                continue
            return Target(self.provider(settings), loc.path[len(ploc.path):].lstrip("/"))
        settings = ProviderSettings(name=f"{loc.scheme}://{loc.bucket}",
                                    uri=f"{loc.scheme}://{loc.bucket}")
        return Target(self.provider(settings), loc.path)

    def local(self, text: str) -> Target:
        """A plain path as a key under ``file:///``; a directory's key ends in '/'.

        The slash makes ``omnifs cp s3://b/x.txt .`` land inside the directory, as cp does.
        """
        if not text:
            raise InvalidInput("an empty path: write . for the current directory")
        path = os.path.abspath(os.path.expanduser(text))
        if text.endswith("/") or os.path.isdir(path):
            path = path.rstrip("/") + "/"
        return Target(self._local_files(), path.lstrip("/"))

    def _local_files(self) -> Provider:
        return self.provider(ProviderSettings(name="file", uri="file:///"))

    def close(self) -> None:
        for p in self._open.values():
            p.close()
        self._open.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
