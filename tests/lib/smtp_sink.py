#!/usr/bin/python3
"""smtp_sink.py: a real SMTP server for the tests (Debian's python3-aiosmtpd).

Every accepted message is written, exactly as received (after the SMTP
dot-unstuffing), to DIR/<n>.eml, and its envelope (MAIL FROM, RCPT TO,
authenticated login, whether the session was TLS, the number of the
connection it came on: 1, 2, ... in the order they were opened) appended
as a JSON line to DIR/envelopes.jsonl; the .eml is renamed into place before that line is
written, so a test that sees the line can read the file.

  smtp_sink.py --dir DIR --port-file F [--reject PREFIX]... [--defer PREFIX]...
               [--tls-dir D] [--auth-env VAR] [--port N] [--delay SECS]

  --reject PREFIX   answer RCPT TO of addresses starting with PREFIX with 550
  --defer PREFIX    ... with 451 (try again later)
  --tls-dir D       offer STARTTLS (and require it) with a self-signed
                    certificate for localhost / 127.0.0.1 written to
                    D/cert.pem (the client's CA file) and D/key.pem
  --auth-env VAR    require AUTH (PLAIN/LOGIN) with "user:password" from $VAR
  --port N          listen on port N (default: a free one), e.g. to come back
                    on the same port after a stop
  --delay SECS      wait SECS before accepting each message's DATA (a slow
                    server, so a test can stop a client mid-delivery)

Restarted on the same DIR, it numbers new messages after the ones there.

The port (a free one) is written to --port-file once the server answers.
SIGTERM stops it.
"""

import argparse
import asyncio
import datetime
import ipaddress
import json
import os
import signal
import socket
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Sink:
    def __init__(self, directory, reject, defer, delay=0.0):
        self.dir = directory
        self.reject = reject
        self.defer = defer
        self.delay = delay
        self.count = len([f for f in os.listdir(directory) if f.endswith(".eml")])
        self.connections = 0
        self.lock = threading.Lock()

    def connection(self, session):
        """the number of session's connection (aiosmtpd makes a Session per connection)"""
        with self.lock:
            if getattr(session, "tk_connection", None) is None:
                self.connections += 1
                session.tk_connection = self.connections
            return session.tk_connection

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if any(address.startswith(p) for p in self.reject):
            return "550 5.1.1 <%s>: recipient refused by the test" % address
        if any(address.startswith(p) for p in self.defer):
            return "451 4.3.0 <%s>: deferred by the test, try later" % address
        envelope.rcpt_tos.append(address)
        self.connection(session)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        connection = self.connection(session)
        with self.lock:
            self.count += 1
            name = "%d.eml" % self.count
            tmp = os.path.join(self.dir, "." + name + ".tmp")
            with open(tmp, "wb") as f:
                f.write(envelope.original_content or envelope.content)
            os.rename(tmp, os.path.join(self.dir, name))
            login = session.auth_data if session.authenticated else None
            line = {"file": name, "mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                    "login": login, "tls": session.ssl is not None,
                    "connection": connection}
            with open(os.path.join(self.dir, "envelopes.jsonl"), "a") as f:
                f.write(json.dumps(line) + "\n")
        return "250 2.0.0 accepted as %s" % name


def self_signed(directory):
    """a certificate for localhost and 127.0.0.1; returns an SSLContext"""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.utcnow()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file = os.path.join(directory, "cert.pem")
    key_file = os.path.join(directory, "key.pem")
    with open(cert_file, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_file, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--reject", action="append", default=[])
    p.add_argument("--defer", action="append", default=[])
    p.add_argument("--tls-dir")
    p.add_argument("--auth-env")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--delay", type=float, default=0.0)
    args = p.parse_args()

    os.makedirs(args.dir, exist_ok=True)
    kwargs = {}
    if args.tls_dir:
        os.makedirs(args.tls_dir, exist_ok=True)
        kwargs["tls_context"] = self_signed(args.tls_dir)
        kwargs["require_starttls"] = True
    if args.auth_env:
        user, _, password = os.environ[args.auth_env].partition(":")

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (auth_data.login.decode() == user and auth_data.password.decode() == password)
            # handled=False: aiosmtpd answers 535 itself on failure
            return AuthResult(success=ok, handled=False, auth_data=user if ok else None)

        kwargs["authenticator"] = authenticator
        kwargs["auth_required"] = True
        kwargs["auth_require_tls"] = bool(args.tls_dir)
    controller = Controller(Sink(args.dir, args.reject, args.defer, args.delay),
                            hostname="127.0.0.1", port=args.port or free_port(), **kwargs)
    controller.start()
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % controller.port)
    os.rename(tmp, args.port_file)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    while not stop.wait(1):
        pass
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
