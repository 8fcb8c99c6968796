#!/usr/bin/env python3
"""A webhook receiver for wa-gateway subscriptions with "signing": "standard".

It verifies every delivery with the Standard Webhooks reference library
(`pip install standardwebhooks`): the signature over webhook-id, webhook-timestamp and the raw
body, with any of the secrets in use (two during a rotation's grace period), and a timestamp
within 5 minutes of now. It answers 204 to a valid delivery (once per webhook-id: a redelivery
of one it already took is acknowledged and skipped) and 400 to anything else.

    WEBHOOK_SECRET=whsec_... PORT=8000 python3 standard_webhooks_receiver.py

The gateway's tests run this very file as a receiver (tests/api/webhook_endpoints.rs).
"""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

webhook = Webhook(os.environ["WEBHOOK_SECRET"])
seen = set()  # webhook-ids already handled; keep them for longer than 5 minutes in production


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        try:
            event = webhook.verify(body, dict(self.headers))
        except WebhookVerificationError as e:
            print(f"refused: {e}", file=sys.stderr, flush=True)
            self.send_response(400)
            self.end_headers()
            return
        delivery = self.headers["webhook-id"]
        if delivery not in seen:
            seen.add(delivery)
            print(json.dumps({"webhookId": delivery, "event": event["event"],
                              "session": event["session"], "id": event["id"]}), flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8000"))), Receiver)
print(f"listening on {server.server_address[1]}", flush=True)
server.serve_forever()
