"""No test reaches beyond the loopback: the environment every test and every process it starts runs
with (tests/conftest.py puts it in ``os.environ``; a test that builds a process's environment from
nothing adds :data:`ENV`).

In the test process pytest-socket refuses any ``connect`` outside the loopback (pyproject.toml's
``--allow-hosts``). A child process has no such guard, so its environment closes the ways out that
the libraries we run take on their own: google-auth's metadata-server probe (``NO_GCE_CHECK``,
and the metadata host and IP moved to a loopback port that refuses), and HTTP(S) through a proxy
that is that same refusing port, for every host but the loopback.
"""

from __future__ import annotations

import socket

# Bound and never listening, for the whole session: a connect to it is refused at once, and no
# other process can start listening on it meanwhile.
_REFUSING = socket.socket()
_REFUSING.bind(("127.0.0.1", 0))
REFUSING = f"127.0.0.1:{_REFUSING.getsockname()[1]}"

LOOPBACK = "127.0.0.1,localhost,::1"

ENV = {
    "NO_GCE_CHECK": "true",
    "GCE_METADATA_HOST": REFUSING,
    "GCE_METADATA_IP": REFUSING,
    **{
        name: f"http://{REFUSING}"
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
    },
    "NO_PROXY": LOOPBACK,
    "no_proxy": LOOPBACK,
}
