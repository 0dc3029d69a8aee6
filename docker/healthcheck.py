"""The image's HEALTHCHECK: GET /healthz of a dashboard container (200 = healthy).

The container's command (/proc/1/cmdline) says what it runs: for `jobdash serve` the port
comes from its --port (default 8501); `jobdash worker` and `jobdash migrate` serve no HTTP and
pass (the worker's own health is its heartbeat, shown by the dashboard and /metrics).
JOBDASH_HEALTHCHECK_URL overrides the URL.
"""

import os
import sys
import urllib.request

with open("/proc/1/cmdline", "rb") as cmdline:
    args = cmdline.read().decode(errors="replace").split("\0")
if "serve" not in args and "demo" not in args:
    sys.exit(0)
if "--no-dashboard" in args:
    sys.exit(0)
port = "8501"
for i, arg in enumerate(args):
    if arg == "--port" and i + 1 < len(args):
        port = args[i + 1]
    elif arg.startswith("--port="):
        port = arg.split("=", 1)[1]
url = os.environ.get("JOBDASH_HEALTHCHECK_URL") or f"http://127.0.0.1:{port}/healthz"
try:
    with urllib.request.urlopen(url, timeout=4) as response:  # noqa: S310 (local URL)
        sys.exit(0 if response.status == 200 else 1)
except Exception as exc:
    print(f"unhealthy: {exc}", file=sys.stderr)
    sys.exit(1)
