"""Turn what a user typed (``s3://b/k``, ``file:///p``, ``aws-east:/k``) into (provider, key).

A bare URI needs no config file: its provider is built from the URI plus
the SDK's environment. When the config names a provider over the same
bucket, that provider's settings (endpoint, credentials) are used instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Self

from providers import InvalidInput, Provider, ProviderSettings, open_provider, parse_uri

from .config import Config

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

    def resolve(self, text: str) -> Target:
        m = _NAMED.match(text)
        if m and "://" not in text:
            name, path = m.groups()
            return Target(self.named(name), path.lstrip("/"))
        loc = parse_uri(text)
        if loc.scheme == "file":
            return Target(self.provider(ProviderSettings(name="file", uri="file:///")),
                          loc.path.lstrip("/"))
        for name, settings in self.config.providers.items():
            ploc = parse_uri(settings.uri)
            if (ploc.scheme, ploc.bucket) != (loc.scheme, loc.bucket):
                continue
            if ploc.path and not (loc.path == ploc.path or loc.path.startswith(ploc.path + "/")):
                continue
            return Target(self.provider(settings), loc.path[len(ploc.path):].lstrip("/"))
        settings = ProviderSettings(name=f"{loc.scheme}://{loc.bucket}",
                                    uri=f"{loc.scheme}://{loc.bucket}")
        return Target(self.provider(settings), loc.path)

    def close(self) -> None:
        for p in self._open.values():
            p.close()
        self._open.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
