"""`python -m ioi demo`: run IOI locally on an embedded SQLite database, no setup needed."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ioi", description="Institutional ORCID Integration")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="start the web app on an embedded demo database (Ctrl-C stops)")
    demo.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    demo.add_argument("--port", type=int, default=5000, help="port of the web app (default 5000)")
    args = parser.parse_args(argv)

    from ioi.config import ConfigError
    from ioi.sandbox.demo import run_demo

    try:
        return run_demo(host=args.host, port=args.port)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
