"""compat: the provider compatibility matrix, declared or probed on live stores.

``omnifs compat`` shows what each store offers, feature by feature
(:mod:`omnifs.compat`). A PROVIDER is a configured provider's name, a URI
(``s3://bucket/prefix``) or a bare scheme (``s3``, ``gs``, ``az``, ``minio``,
``file``: declared cells only). With none, the configured providers, or
every scheme when there is no config. ``--probe`` runs small self-cleaning
probes under ``.omnifs/probe/`` of each store (``providers/probe.py``); a
probe that could not run makes the exit status 1, and is named. An ability a
provider's ``disable`` key turns off shows as "disabled by config", with the
fallback omnifs uses instead.
"""

from __future__ import annotations

import argparse
import sys

from .. import compat
from ..config import load_config
from ..errors import InvalidInput
from ..targets import Resolver

ORDER = 36


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compat", help="what each store offers: features x providers, declared or probed",
        description="Show the compatibility matrix of stores: server-side copy, multipart "
                    "limits, conditional writes, checksums, versioning, locks, tiers, "
                    "metadata and key limits, listing, range reads, encryption, presigned "
                    "URLs. Each cell is supported, unsupported or degraded, with the "
                    "fallback omnifs uses and where it comes from (declared, probed, "
                    "emulator).")
    p.add_argument("providers", nargs="*", metavar="PROVIDER",
                   help="a configured provider, a URI, or a scheme (s3, gs, az, minio, file); "
                        "default: the configured providers, else every scheme")
    p.add_argument("--probe", action="store_true",
                   help="check the cells against each live store with small, self-cleaning "
                        "probes under .omnifs/probe/ (about 20 requests, a few KiB)")
    p.add_argument("--format", choices=compat.FORMATS, default="md",
                   help="output format (default: %(default)s)")
    p.set_defaults(func=cmd_compat)


def cmd_compat(args) -> int:
    from omnifs.providers import SCHEMES, parse_uri
    from omnifs.providers.probe import probe

    cfg = load_config(args.config, required=False)
    wanted = list(args.providers) or list(cfg.providers) or list(SCHEMES)
    columns = []
    failed = False
    with Resolver(cfg) as resolver:
        for text in wanted:
            if text in SCHEMES and text not in cfg.providers:
                if args.probe:
                    raise InvalidInput(f"{text}: --probe needs a store, not a scheme: name a "
                                       "configured provider or a URI such as "
                                       f"{text}://bucket")
                columns.append(compat.declared(text, text))
                continue
            if "://" in text:
                parse_uri(text)
                name = text
            elif text in cfg.providers:
                name = text
            else:
                known = ", ".join(cfg.providers) or "none configured"
                raise InvalidInput(f"{text}: not a provider, URI or scheme (providers: {known}; "
                                   f"schemes: {', '.join(SCHEMES)})")
            disabled = () if "://" in text else \
                tuple(cfg.providers[text].extra.get("disable") or ())
            if not args.probe:
                scheme = parse_uri(text if "://" in text else cfg.providers[text].uri).scheme
                columns.append(compat.declared(name, scheme, disabled))
                continue
            provider = resolver.resolve(text).provider if "://" in text \
                else resolver.named(text)
            report = probe(provider)
            failed = failed or bool(report.skipped)
            columns.append(compat.probed(name, provider, report, disabled))
    sys.stdout.write(compat.render_matrix(columns, args.format))
    if failed:
        names = [c.name for c in columns if c.probe is not None and c.probe.skipped]
        print(f"omnifs compat: some probes could not run on {', '.join(names)} (see above)",
              file=sys.stderr)
        return 1
    return 0
