# bench/clients/requests_session.py: the Python alternative — Debian's
# python3-requests with one requests.Session (keep-alive), json.dumps and
# .json(). Same request as the module: same target, the same body bytes
# (sorted keys, no spaces, re-encoded every call), same headers.
#   BENCH_URL=... BENCH_BODY=... /usr/bin/python3 bench/clients/requests_session.py N WARMUP
# Prints "ok N SECONDS"; exits 1 on the first non-201 or undecodable answer.
import json
import os
import sys
import time
import uuid

import requests

n, warmup = int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 0
url, token = os.environ["BENCH_URL"], os.environ["BENCH_TOKEN"]
body = json.loads(os.environ["BENCH_BODY"])
session = requests.Session()
base_headers = {
    "Authorization": "Bearer " + token,
    "Content-Type": "application/json",
    "Accept": "application/json",
}


def create():
    data = json.dumps(body, separators=(",", ":"), sort_keys=True)
    headers = dict(base_headers)
    headers["Idempotency-Key"] = str(uuid.uuid4())
    r = session.post(url, data=data, headers=headers)
    if r.status_code != 201:
        sys.stderr.write("requests: HTTP %d\n" % r.status_code)
        sys.exit(1)
    if "id" not in r.json():
        sys.stderr.write("requests: no group in the answer\n")
        sys.exit(1)


for _ in range(warmup):
    create()
started = time.perf_counter()
for _ in range(n):
    create()
print("ok %d %.6f" % (n, time.perf_counter() - started))
