"""Publishes event files to a topic on the Pub/Sub emulator (``make serve`` tells how)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from devstack.push_relay import publish


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("files", nargs="+", type=Path, help="event JSON files ('-' for stdin)")
    parser.add_argument("--project", default="notifier-local")
    parser.add_argument("--topic", default="platform-events")
    args = parser.parse_args(argv)
    payloads = [sys.stdin.buffer.read() if str(f) == "-" else f.read_bytes() for f in args.files]
    for path, message_id in zip(
        args.files, publish(args.project, args.topic, payloads), strict=True
    ):
        print(f"published {path} as message {message_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
