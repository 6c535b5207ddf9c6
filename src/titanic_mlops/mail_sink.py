"""An SMTP sink for the local monitoring stack: every mail it receives becomes an ``.eml`` file.

    python -m titanic_mlops.mail_sink --port 2525 --dir .stack/mail

Alertmanager delivers its alert emails here (``deploy/local/alertmanager.yml``); open the
files with any mail reader, or read them in tests with :func:`read_mails`. Runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import itertools
import os
import signal
import threading
import time
from email.message import EmailMessage
from pathlib import Path

HOST = "127.0.0.1"


class SaveToFolder:
    """aiosmtpd handler writing each message, as received, to ``<folder>/<utc-ts>-<n>.eml``."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._count = itertools.count(1)

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's name)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = self.folder / f"{stamp}-{next(self._count):04d}.eml"
        partial = path.with_suffix(".part")
        partial.write_bytes(envelope.original_content or envelope.content)
        os.replace(partial, path)  # readers never see half a mail
        return "250 Message accepted for delivery"


def read_mails(folder: Path) -> list[tuple[Path, EmailMessage]]:
    """The saved mails of ``folder``, oldest first, parsed."""
    return [
        (path, email.message_from_bytes(path.read_bytes(), policy=email.policy.default))
        for path in sorted(Path(folder).glob("*.eml"))
    ]


def text_of(message: EmailMessage) -> str:
    """The plain-text body of a mail (the HTML one if it has no text part)."""
    part = message.get_body(preferencelist=("plain", "html"))
    return part.get_content() if part is not None else ""


def main(argv: list[str] | None = None) -> None:
    """Serve SMTP on loopback until SIGTERM or SIGINT."""
    from aiosmtpd.controller import Controller

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args(argv)
    controller = Controller(SaveToFolder(args.dir), hostname=HOST, port=args.port)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    controller.start()
    print(f"SMTP sink on {HOST}:{args.port}, saving mails to {args.dir}", flush=True)
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
