"""A stand-in for the vLLM process in lifecycle tests: serves /health after a delay, or exits early.
Usage: python fake_vllm.py PORT DELAY_S [fail]"""

import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

port, delay = int(sys.argv[1]), float(sys.argv[2])
if len(sys.argv) > 3:
    print("fake vllm: CUDA out of memory (scripted failure)", flush=True)
    sys.exit(3)
time.sleep(delay)


class Health(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


print("fake vllm: ready", flush=True)
HTTPServer(("127.0.0.1", port), Health).serve_forever()
