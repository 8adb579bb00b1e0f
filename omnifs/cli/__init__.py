"""The ``omnifs`` command: ``main`` here; every other module of this package is a
group of subcommands:

* ``objects``: ``init``, ``ls``, ``stat``, ``cat``, ``put``, ``rm`` (one object on any store);
* ``transfer``: ``cp``, ``sync`` (the copy engine between any two stores);
* ``migrate``: the ``migrate`` steps, a package with one module per step (moving a
  tree between stores: plan, run, verify, rollback, report);
* ``mount``: ``mount``, ``umount``, ``import``, ``replicas``, ``replicate`` (the mount
  and its catalog);
* ``check``: ``check`` (the catalog against what every store holds);
* ``catalog``: ``snapshot``, ``dump``, ``load`` (the catalog to the stores, or JSON);
* ``cache``: ``cache stats``, ``cache clear`` (the local block cache);
* ``compat``: ``compat`` (what each store offers, declared or probed);
* ``daemon``: ``daemon``, ``status`` (the background daemon and what it sees);
* ``dr``: ``dr backup``, ``list``, ``restore``, ``prune``, ``drill``, ``failover``,
  ``failback``, ``catalog``, ``keygen`` (disaster recovery, omnifs/dr/).
* ``gov``: ``gov templates``, ``check``, ``report``, ``apply`` (governance rules);
* ``audit``: ``audit verify``, ``export``, ``checkpoint`` (the audit log).

Each such module has ``register(subparsers)`` adding its
subcommands, each with ``set_defaults(func=handler)``; ``handler(args)``
returns the exit status. Errors reach the user as one line, never a
traceback (``--debug`` shows it). Log lines and error lines escape control
characters, so a file name holding a newline cannot forge a line of its own.
Before any command runs the umask becomes 077 (:mod:`omnifs.private`).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys

from omnifs.providers.diskspace import is_disk_full

from .. import __version__
from ..errors import InvalidInput, OmnifsError
from ..printable import escape_controls
from ..private import restrict_umask

log = logging.getLogger("omnifs")

#: exit statuses: 1 an operation failed, 2 bad input (usage, config, URI)
EXIT_FAILED = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="omnifs",
        description="One POSIX directory tree over several object stores.",
        epilog="Run `omnifs COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"omnifs {__version__}")
    parser.add_argument("--config", "-c", metavar="PATH",
                        help="config file (default: $OMNIFS_CONFIG, ./omnifs.toml, "
                             "~/.config/omnifs/omnifs.toml, /etc/omnifs/omnifs.toml)")
    parser.add_argument("--debug", action="store_true", help="verbose logs and tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = [importlib.import_module(f"{__name__}.{m.name}")
               for m in pkgutil.iter_modules(__path__)]
    for module in sorted(modules, key=lambda m: getattr(m, "ORDER", 100)):
        module.register(sub)
    # --config and --debug are accepted after the command too (`omnifs init --config X`)
    for command in sub.choices.values():
        command.add_argument("--config", "-c", metavar="PATH", default=argparse.SUPPRESS,
                             help="config file (see `omnifs --help`)")
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help=argparse.SUPPRESS)
    return parser


class EscapingFormatter(logging.Formatter):
    """Escapes the message, never the traceback ``--debug`` adds after it."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # logging's own name
        record.message = escape_controls(record.message)
        return super().formatMessage(record)


def setup_logging(debug: bool) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(EscapingFormatter("omnifs: %(levelname)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, handlers=[handler])


def main(argv: list[str] | None = None) -> int:
    restrict_umask()
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.debug)
    for noisy in ("botocore", "urllib3", "azure", "google", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if args.debug else logging.ERROR)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    status = _run(args)
    from .audit import record_command

    record_command(args, status)
    return status


def _run(args) -> int:
    try:
        return args.func(args) or 0
    except InvalidInput as e:
        _fail(args, e)
        return EXIT_USAGE
    except OmnifsError as e:
        _fail(args, e)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("omnifs: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (e.g. `omnifs cat ... | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:  # noqa: BLE001 - the one place unknown errors become one line
        _fail(args, e, internal=not is_disk_full(e))
        return EXIT_FAILED


def _fail(args, err: BaseException, internal: bool = False) -> None:
    if args.debug:
        log.exception("failed")
    text = escape_controls(str(err).splitlines()[0]) if str(err) else type(err).__name__
    if is_disk_full(err) and not isinstance(err, OSError):  # SQLite's words for ENOSPC
        text = f"{text}: free some space on the disk of the catalog and the cache"
    elif internal:
        text = f"internal error: {type(err).__name__}: {text} (run with --debug for details)"
    print(f"omnifs: error: {text}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
