#!/usr/bin/python3
"""push_receiver.py: a Web Push service for the tests, independent of our C code.

An HTTP server that plays the push service a browser subscription points at
(RFC 8030), written against the RFCs with Python's cryptography package and
sharing nothing with consumers/notify/webpush.c:

  - VAPID (RFC 8292): parses "Authorization: vapid t=<jwt>, k=<key>",
    verifies the JWT's ES256 signature (raw r||s) with k, checks the header
    (alg ES256), aud (this server's origin), exp (in the future, at most 24 h
    ahead), sub (mailto: or https:), and k against --vapid-public if given
    (the applicationServerKey the subscription was made with);
  - RFC 8291 / RFC 8188: decrypts the aes128gcm body with the subscription's
    private key and auth secret (any number of records, padding allowed);
  - records every request as one JSON line in --log (path, headers, VAPID
    verdict and claims, decrypted payload or the raw body of a JSON POST);
  - answers 403 if the VAPID check failed, 400 if the body did not decrypt
    (a real push service cannot decrypt; this one can, so a test sees it),
    else 201 (with Location), or what --status PATH=CODE[:RETRY_AFTER] says
    for that path (e.g. /gone=410, /busy=429:30).

Usage:
  push_receiver.py gen-subscription OUT.json   private key, p256dh, auth
  push_receiver.py gen-vapid PEM_FILE          prints {"private_b64url", "public_b64url"}
  push_receiver.py serve --subscription SUB.json --log LOG.jsonl --port-file F
                   [--vapid-public KEY] [--status /path=CODE[:RETRY_AFTER]]...
                   [--tls-name NAME --tls-dir DIR]
The port (chosen by the system) is written to --port-file once listening.
With --tls-name it serves https with a self-signed certificate for NAME
(written to DIR/cert.pem: the client's CA file), and its origin (the VAPID
aud it expects) is https://NAME: a test points a real-looking endpoint such
as https://updates.push.services.mozilla.com/... at it (the notify service's
development setting push_connect_to), and TLS is verified against NAME.
"""

import argparse
import base64
import datetime
import json
import os
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def b64u_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64u_encode(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def public_point(key):
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def hkdf(salt, ikm, info, length):
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def gen_subscription(out):
    key = ec.generate_private_key(ec.SECP256R1())
    sub = {
        "private_pem": key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()).decode(),
        "p256dh": b64u_encode(public_point(key)),
        "auth": b64u_encode(os.urandom(16)),
    }
    with open(out, "w") as f:
        json.dump(sub, f)
    print(json.dumps({"p256dh": sub["p256dh"], "auth": sub["auth"]}))


def gen_vapid(pem_file):
    key = ec.generate_private_key(ec.SECP256R1())
    with open(pem_file, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()))
    d = key.private_numbers().private_value.to_bytes(32, "big")
    print(json.dumps({"private_b64url": b64u_encode(d),
                      "public_b64url": b64u_encode(public_point(key))}))


def verify_vapid(authorization, origin, expected_key):
    """(claims, k) or raises ValueError saying what is wrong"""
    if not authorization or not authorization.startswith("vapid "):
        raise ValueError("no 'Authorization: vapid' header")
    params = {}
    for part in authorization[len("vapid "):].split(","):
        name, _, value = part.strip().partition("=")
        params[name] = value
    if "t" not in params or "k" not in params:
        raise ValueError("vapid header lacks t= or k=")
    k = params["k"]
    if expected_key is not None and k != expected_key:
        raise ValueError("k is not the expected application server key")
    pieces = params["t"].split(".")
    if len(pieces) != 3:
        raise ValueError("t is not a JWS compact serialization")
    header = json.loads(b64u_decode(pieces[0]))
    if header.get("alg") != "ES256":
        raise ValueError("JWT alg is %r, not ES256" % header.get("alg"))
    sig = b64u_decode(pieces[2])
    if len(sig) != 64:
        raise ValueError("ES256 signature is %d bytes, not 64 (r||s)" % len(sig))
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64u_decode(k))
    try:
        pub.verify(der, (pieces[0] + "." + pieces[1]).encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise ValueError("JWT signature does not verify with k")
    claims = json.loads(b64u_decode(pieces[1]))
    now = time.time()
    if claims.get("aud") != origin:
        raise ValueError("aud %r is not this push service's origin %r" % (claims.get("aud"), origin))
    exp = claims.get("exp")
    if not isinstance(exp, int) or exp <= now or exp > now + 86400 + 60:
        raise ValueError("exp %r is not within the next 24 hours" % exp)
    sub = claims.get("sub", "")
    if not (sub.startswith("mailto:") or sub.startswith("https:")):
        raise ValueError("sub %r is not a mailto: or https: URI" % sub)
    return claims, k


def decrypt_aes128gcm(body, key, auth):
    """RFC 8291 s3.4 key derivation, RFC 8188 record decryption"""
    if len(body) < 21:
        raise ValueError("body shorter than the aes128gcm header")
    salt = body[:16]
    rs = int.from_bytes(body[16:20], "big")
    idlen = body[20]
    keyid = body[21:21 + idlen]
    data = body[21 + idlen:]
    if rs < 18:
        raise ValueError("record size %d too small" % rs)
    if idlen != 65:
        raise ValueError("keyid is %d bytes, not a 65-byte P-256 point" % idlen)
    as_public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), keyid)
    ua_public = public_point(key)
    ecdh_secret = key.exchange(ec.ECDH(), as_public)
    ikm = hkdf(auth, ecdh_secret, b"WebPush: info\x00" + ua_public + keyid, 32)
    cek = hkdf(salt, ikm, b"Content-Encoding: aes128gcm\x00", 16)
    nonce = hkdf(salt, ikm, b"Content-Encoding: nonce\x00", 12)
    records = [data[i:i + rs] for i in range(0, len(data), rs)] or [b""]
    out = b""
    for seq, record in enumerate(records):
        n = (int.from_bytes(nonce, "big") ^ seq).to_bytes(12, "big")
        try:
            plain = AESGCM(cek).decrypt(n, record, None)
        except InvalidTag:
            raise ValueError("record %d does not decrypt (wrong keys or corrupt)" % seq)
        plain = plain.rstrip(b"\x00")
        last = seq == len(records) - 1
        if not plain or plain[-1] != (2 if last else 1):
            raise ValueError("record %d lacks its padding delimiter" % seq)
        out += plain[:-1]
    return out


class Receiver(BaseHTTPRequestHandler):
    server_version = "push-receiver/1"

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        srv = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        code, retry_after = srv.rules.get(self.path, (201, None))
        rec = {"path": self.path, "method": "POST", "status": code, "t": time.time(),
               "headers": {k.lower(): v for k, v in self.headers.items()}}
        authz = self.headers.get("Authorization", "")
        if authz.startswith("vapid"):
            try:
                rec["claims"], rec["vapid_k"] = verify_vapid(authz, srv.origin, srv.vapid_public)
                rec["vapid_ok"] = True
            except Exception as e:  # noqa: BLE001 - recorded for the test
                rec["vapid_ok"] = False
                rec["vapid_error"] = str(e)
        if self.headers.get("Content-Encoding") == "aes128gcm":
            try:
                plain = decrypt_aes128gcm(body, srv.sub_key, srv.sub_auth)
                rec["payload"] = plain.decode("utf-8", "replace")
                rec["decrypt_ok"] = True
            except Exception as e:  # noqa: BLE001
                rec["decrypt_ok"] = False
                rec["decrypt_error"] = str(e)
        else:
            rec["body"] = body.decode("utf-8", "replace")
        # as a real push service would: refuse what does not verify
        if rec.get("vapid_ok") is False:
            code, retry_after = 403, None
        elif rec.get("decrypt_ok") is False:
            code, retry_after = 400, None
        rec["status"] = code
        with srv.lock:
            srv.count += 1
            with open(srv.log, "a", encoding="utf-8") as f:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n = srv.count
        self.send_response(code)
        if code == 201:
            self.send_header("Location", "/message/%d" % n)
        if retry_after is not None:
            self.send_header("Retry-After", str(retry_after))
        reply = b"" if code < 300 else ("status %d for %s" % (code, self.path)).encode()
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


def tls_context(name, directory):
    """a self-signed certificate for name (usable as its own CA); an SSLContext"""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    os.makedirs(directory, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file = os.path.join(directory, "cert.pem")
    key_file = os.path.join(directory, "key.pem")
    with open(key_file, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(cert_file, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


def serve(args):
    with open(args.subscription) as f:
        sub = json.load(f)
    rules = {}
    for r in args.status:
        path, _, spec = r.partition("=")
        code, _, retry = spec.partition(":")
        rules[path] = (int(code), int(retry) if retry else None)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    httpd.daemon_threads = True
    port = httpd.server_address[1]
    httpd.origin = "http://127.0.0.1:%d" % port
    if args.tls_name:
        ctx = tls_context(args.tls_name, args.tls_dir)
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        httpd.origin = "https://%s" % args.tls_name
    httpd.rules = rules
    httpd.log = args.log
    httpd.lock = threading.Lock()
    httpd.count = 0
    httpd.vapid_public = args.vapid_public
    httpd.sub_key = serialization.load_pem_private_key(sub["private_pem"].encode(), None)
    httpd.sub_auth = b64u_decode(sub["auth"])
    open(args.log, "a").close()
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.rename(tmp, args.port_file)
    httpd.serve_forever()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sp = p.add_subparsers(dest="cmd", required=True)
    g = sp.add_parser("gen-subscription")
    g.add_argument("out")
    v = sp.add_parser("gen-vapid")
    v.add_argument("pem")
    s = sp.add_parser("serve")
    s.add_argument("--subscription", required=True)
    s.add_argument("--log", required=True)
    s.add_argument("--port-file", required=True)
    s.add_argument("--vapid-public")
    s.add_argument("--status", action="append", default=[])
    s.add_argument("--tls-name")
    s.add_argument("--tls-dir")
    args = p.parse_args()
    if args.cmd == "gen-subscription":
        gen_subscription(args.out)
    elif args.cmd == "gen-vapid":
        gen_vapid(args.pem)
    else:
        serve(args)


if __name__ == "__main__":
    sys.exit(main())
