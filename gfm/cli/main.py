"""Entry point of the `gfm` command: wires the subcommand modules, handles errors."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from gfm import __version__
from gfm.cli import (
    build,
    dbt,
    embed,
    evaluate,
    features,
    generate,
    import_data,
    index,
    models,
    pipeline,
    refresh,
    report,
    serve,
    show_config,
    train,
    transform,
    tune,
)
from gfm.cli.common import add_common_arguments, context_from_args
from gfm.errors import GfmError

SUBCOMMANDS = [generate, import_data, transform, dbt, embed, train, features, tune, evaluate, index,
               models, serve, build, report, pipeline, refresh, show_config]


def _offline_environment() -> None:
    """No telemetry and no model hub at run time (DEVELOPERS.md, STACK.md)."""
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")


# Loggers whose INFO lines say nothing a person needs: Feast logs "Registry cache expired, so
# refreshing" on every registry read past its TTL (dozens of times per evaluation).
NOISY_LOGGERS = ("feast.infra.registry.registry", "feast.infra.registry.caching_registry")


def quiet_noisy_loggers(quiet: bool = True) -> None:
    """Their warnings and errors still show; -v (quiet=False) shows everything."""
    for name in NOISY_LOGGERS:
        logger = logging.getLogger(name)
        # Levels set outright (not NOTSET): a parent's level (Feast sets its own) must not
        # decide; and enabled again, should a library's dictConfig have disabled it.
        logger.setLevel(logging.WARNING if quiet else logging.DEBUG)
        logger.disabled = False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gfm",
        description="Graph foundation model for personalization on a feature store.",
    )
    parser.add_argument("--version", action="version", version=f"gfm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        sub = module.register(subparsers)
        targets = [sub]
        # Nested subcommands (`gfm import parquet`) take the common flags at their own level.
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                targets = list(action.choices.values())
        for target in targets:
            add_common_arguments(target)
            target.set_defaults(handler=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    _offline_environment()
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    quiet_noisy_loggers(quiet=not args.verbose)
    try:
        ctx = context_from_args(args)
        status = args.handler(args, ctx)  # None, or an exit status (gfm dbt passes dbt's)
    except GfmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    sys.exit(main())
