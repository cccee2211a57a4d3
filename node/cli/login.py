"""`dsgo init --dev-login` and `dsgo dev-op`: the development OpenID Provider for people."""

from __future__ import annotations

import argparse
from pathlib import Path

from node.config import ConfigError, load_settings


def init_dev_login(args: argparse.Namespace, config: Path) -> None:
    """After `dsgo init`: the [[login.providers]] entry and DIR/dev-op.json (with --dev-login)."""
    if not getattr(args, "dev_login", False):
        return
    from node.login.devop import init_dev_login as write

    op = write(config, args.dev_login_port)
    base = load_settings(config).base_iri
    print(f"wrote {op}: run `dsgo dev-op {op}`, then log in at {base}/login")


def cmd_dev_op(args: argparse.Namespace) -> int:
    from node.login.devop import DevOpError, run_dev_op

    if not args.file.is_file():
        raise ConfigError(f"{args.file}: not found (write it with `dsgo init DIR --dev-login`)")
    try:
        return run_dev_op(args.file)
    except DevOpError as exc:
        raise ConfigError(str(exc)) from None
