"""A real SMTP server on loopback for the email tests (aiosmtpd).

Every accepted message is written to DIR as <n>.eml (the raw RFC 5322 message) with its
envelope in <n>.json, the file renamed into place so a reader never sees half a message.
Recipients whose local part starts with "bounce" are refused with 550 (a permanent failure);
those starting with "busy" get 451 (transient). The chosen port is printed on stdout as
"listening <port>" once the server accepts connections.

    python sink.py --dir DIR [--port 0]
"""

import argparse
import asyncio
import json
import os
import signal
import socket

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("bounce"):
            return "550 5.1.1 no such user"
        if local.startswith("busy"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        base = os.path.join(self.directory, f"{self.count:06d}")
        meta = {"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos}
        with open(base + ".json.tmp", "w") as f:
            json.dump(meta, f)
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(base + ".json.tmp", base + ".json")
        os.rename(base + ".eml.tmp", base + ".eml")
        return "250 Message accepted"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, help="where received messages are written")
    parser.add_argument("--port", type=int, default=0, help="port (0: pick a free one)")
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    port = args.port or free_port()
    controller = Controller(Sink(args.dir), hostname="127.0.0.1", port=port)
    controller.start()
    print(f"listening {port}", flush=True)
    loop = asyncio.new_event_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    loop.run_until_complete(stop)
    controller.stop()


if __name__ == "__main__":
    main()
