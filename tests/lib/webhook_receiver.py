#!/usr/bin/python3
"""webhook_receiver.py: an HTTP endpoint for alert webhooks in the tests.

Records the JSON body of every POST as one line in --log and answers 204.
The port (chosen by the system) is written to --port-file once listening.

Usage: webhook_receiver.py --log LOG.jsonl --port-file F
"""

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--port-file", required=True)
    args = ap.parse_args()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                rec = {"path": self.path, "json": json.loads(body)}
            except ValueError:
                rec = {"path": self.path, "raw": body.decode("utf-8", "replace")}
            with open(args.log, "a") as f:
                f.write(json.dumps(rec) + "\n")
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    import os
    os.rename(tmp, args.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
