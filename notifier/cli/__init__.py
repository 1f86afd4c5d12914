"""``notifier`` (or ``python -m notifier``): the operator's commands, against a deployment.

``make`` installs the checkout into its venv with the ``notifier`` command, which runs from any
directory. Every Firestore and Pub/Sub call answers within ``--timeout`` or ends the command with
one line naming what it could not reach (:mod:`~notifier.cli.reach`); missing Google credentials
end it with one line saying how to provide them.

``status`` shows where the records stand, ``replay`` sends failed and stuck notifications again,
``redrive`` brings dead letters back. The configuration is the function's own environment
(``GOOGLE_CLOUD_PROJECT``, ``FIRESTORE_DATABASE``, ``SVIX_API_KEY``...; ``FIRESTORE_EMULATOR_HOST``
and ``PUBSUB_EMULATOR_HOST`` for the emulators), and each command builds only what it needs: only
``replay`` and ``redrive --direct`` send, so only they need the Svix token.

Results go to stdout, as a table (rich on a terminal, plain text otherwise) or, with ``--json``,
as one JSON object; progress and the function's own log lines (warnings and errors, everything
with ``--verbose``) go to stderr. Exit status: 0 done, 1 something is left to do (still failed,
left pending, left in the dead letters) or a cloud call failed, 2 a usage or configuration error.

The package: :mod:`~notifier.cli.parser` (arguments), :mod:`~notifier.cli.commands` (one module
per command, registered by name), :mod:`~notifier.cli.output` (tables, progress, JSON).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence

from notifier import logs
from notifier.cli.command import Context, UsageError
from notifier.cli.commands import REGISTERED, registered
from notifier.cli.output import Output
from notifier.cli.parser import PROG, build_parser
from notifier.config import ConfigError


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command; returns its exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    # Only the command named is imported (all of them for --help or a mistyped name).
    named = argv[:1] if argv[:1] and argv[0] in REGISTERED else REGISTERED
    commands = registered(named)
    args = build_parser(commands.values()).parse_args(argv)
    env = dict(os.environ)
    if args.gcp_project:
        env["GOOGLE_CLOUD_PROJECT"] = args.gcp_project
    if args.database:
        env["FIRESTORE_DATABASE"] = args.database
    command = commands[args.command]
    try:
        with _logs_to_stderr(args.verbose):
            return command.run(args, Context(env, Output(as_json=args.json)))
    except ConfigError as exc:
        print(f"notifier: {exc}", file=sys.stderr)
        return 2
    except UsageError as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("notifier: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        status = _failed_call(exc)
        if status is None:
            raise
        return status


def _failed_call(exc: Exception) -> int | None:
    """A cloud call that failed: one line on stderr and the exit status; None for anything else.

    The cloud errors are imported here, once one happened: a command that makes no cloud call
    (``config check``) never loads the client libraries.
    """
    from google.api_core import exceptions as gexc
    from google.auth.exceptions import DefaultCredentialsError

    from notifier.cli.reach import CREDENTIALS_HELP, CloudError
    from notifier.domain.errors import StoreUnavailable

    if isinstance(exc, CloudError):  # one line naming what could not be reached, or what failed
        print(f"notifier: {exc}", file=sys.stderr)
        return 1
    if isinstance(exc, DefaultCredentialsError):
        said = " ".join(str(exc).split()).split(". ")[0]
        print(f"notifier: {CREDENTIALS_HELP} ({said})", file=sys.stderr)
        return 2
    if isinstance(exc, gexc.GoogleAPIError | StoreUnavailable):
        cause = exc.__cause__ if isinstance(exc, StoreUnavailable) and exc.__cause__ else exc
        print(f"notifier: {type(cause).__name__}: {str(cause)[:300]}", file=sys.stderr)
        return 1
    return None


@contextlib.contextmanager
def _logs_to_stderr(verbose: bool) -> Iterator[None]:
    """The function's JSON lines go to stderr here: stdout carries the command's output.

    ``logs.setup`` keeps an existing JSON handler, so it adds no stdout one while this is in place.
    """
    root = logging.getLogger("notifier")
    saved = (root.handlers[:], root.propagate, root.level)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logs.JsonFormatter())
    handler.setLevel(logging.INFO if verbose else logging.WARNING)
    root.handlers, root.propagate = [handler], False
    try:
        yield
    finally:
        root.handlers, root.propagate = saved[0], saved[1]
        root.setLevel(saved[2])
