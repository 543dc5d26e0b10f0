#!/usr/bin/env python3
"""Sends N GET requests to BASE_URL over one keep-alive connection, cycling through PATHS.

  requests.py http://127.0.0.1:PORT 1000 /healthz /bench/lua ...

Exits non-zero unless every response is a 200.
"""

import http.client
import sys
import time
from urllib.parse import urlsplit


def main():
    base, n, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:] or ["/healthz"]
    u = urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    bad = {}
    t0 = time.perf_counter()
    for i in range(n):
        path = paths[i % len(paths)]
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            bad[(path, resp.status)] = bad.get((path, resp.status), 0) + 1
    conn.close()
    secs = time.perf_counter() - t0
    print(f"{n} requests ({', '.join(paths)}) in {secs:.2f} s")
    if bad:
        sys.exit(f"non-200 responses: {bad}")


if __name__ == "__main__":
    main()
