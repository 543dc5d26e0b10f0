#!/usr/bin/env python3
"""Cold start of assay-engine: time from spawning the process to the first 200 from /readyz.

Used by bench/startup.sh. Each run: pick a free port, write a config (SQLite in DIR/data), spawn
`assay-engine serve --config ...` with cwd DIR, and from the moment before the spawn poll
GET /readyz over a new connection every ~1 ms until it answers 200. Also records when the
"listening on" line appeared on stdout. Then SIGTERM and wait.

  startup.py BIN TMPDIR --mode fresh    -> every run in a new, empty data dir (migrations run)
  startup.py BIN TMPDIR --mode existing -> every run on one data dir migrated beforehand
"""

import argparse
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(path, port, data_dir):
    with open(path, "w") as f:
        f.write(
            f'[server]\nbind_addr = "127.0.0.1:{port}"\nshutdown_grace_secs = 2\n\n'
            f'[backend]\ntype = "sqlite"\ndata_dir = "{data_dir}"\n\n'
            f'[log]\nlevel = "warn"\n'
        )


def ready(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/readyz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def one_run(binary, workdir, data_dir, timeout=30.0):
    """Returns (ms to first /readyz 200, ms to the 'listening' line) or None if the port was taken."""
    port = free_port()
    cfg = os.path.join(workdir, "engine.toml")
    write_config(cfg, port, data_dir)
    listening = {}
    err_path = os.path.join(workdir, "stderr")
    with open(err_path, "w") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([binary, "serve", "--config", cfg], cwd=workdir,
                                stdout=subprocess.PIPE, stderr=err, text=True)

        def read_stdout():
            for line in proc.stdout:
                if "listening on" in line and "t" not in listening:
                    listening["t"] = time.perf_counter()
        reader = threading.Thread(target=read_stdout, daemon=True)
        reader.start()
        try:
            while True:
                if ready(port):
                    t_ready = time.perf_counter()
                    break
                if proc.poll() is not None:
                    with open(err_path) as e:
                        text = e.read()
                    if "cannot listen" in text:
                        return None  # someone took the port between our check and the bind
                    sys.exit(f"the engine exited with {proc.returncode} during start:\n{text}")
                if time.perf_counter() - t0 > timeout:
                    sys.exit(f"/readyz did not answer 200 within {timeout} s")
                time.sleep(0.001)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            reader.join(timeout=5)
    ms_ready = (t_ready - t0) * 1000
    ms_listen = (listening["t"] - t0) * 1000 if "t" in listening else float("nan")
    return ms_ready, ms_listen


def percentile(values, p):
    """Nearest-rank percentile."""
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(-(-p * len(v) // 100)) - 1))
    return v[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("tmpdir")
    ap.add_argument("--mode", choices=["fresh", "existing"], required=True)
    ap.add_argument("--runs", type=int, default=20)
    a = ap.parse_args()

    base = os.path.join(a.tmpdir, f"startup-{a.mode}")
    os.makedirs(base, exist_ok=True)
    existing_data = os.path.join(base, "data")
    if a.mode == "existing":
        # One untimed start migrates the data dir and writes the admin key; later runs reuse it.
        while one_run(a.binary, base, existing_data) is None:
            pass

    ready_ms, listen_ms = [], []
    i = 0
    while len(ready_ms) < a.runs:
        i += 1
        if a.mode == "fresh":
            workdir = os.path.join(base, f"run{i}")
            os.makedirs(workdir)
            data_dir = os.path.join(workdir, "data")
        else:
            workdir, data_dir = base, existing_data
        r = one_run(a.binary, workdir, data_dir)
        if a.mode == "fresh":
            shutil.rmtree(workdir, ignore_errors=True)
        if r is None:
            continue
        ready_ms.append(r[0])
        listen_ms.append(r[1])

    print(f"startup ({a.mode} data dir, {a.runs} runs): ms from spawn to first /readyz 200")
    print("  runs:   " + " ".join(f"{x:.1f}" for x in ready_ms))
    print(f"  median: {percentile(ready_ms, 50):.1f} ms   p90: {percentile(ready_ms, 90):.1f} ms   "
          f"min: {min(ready_ms):.1f} ms   max: {max(ready_ms):.1f} ms")
    print(f"  ('listening' line on stdout: median {percentile(listen_ms, 50):.1f} ms)")
    print(f"RESULT startup_{a.mode}_median_ms={percentile(ready_ms, 50):.1f} "
          f"startup_{a.mode}_p90_ms={percentile(ready_ms, 90):.1f}")


if __name__ == "__main__":
    main()
