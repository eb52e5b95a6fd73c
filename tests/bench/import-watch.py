#!/usr/bin/env python3
"""What the import bench watches while an import runs, in one light process each.

  import-watch.py rss PID OUT
      Writes machtigend's largest VmRSS seen so far (KiB) to OUT, sampled every 200 ms.
  import-watch.py exchanges OUT
      A portal's token exchanges, one every 100 ms on one kept-alive connection, each
      appended to OUT as "<status> <seconds>".  MACHTIGEN_URL, PORTAL_CLIENT_ID and
      PORTAL_CLIENT_SECRET come from the environment; stdin gives the subject token, the
      requested subject and the scope, one per line (never on a command line).

Both run until they are sent SIGTERM, their parent (the bench) is gone, or 15 minutes have
passed, whichever comes first: a bench that dies leaves nothing running.  They replace shell loops that started curl, awk and
sleep several times a second: on this 2-core machine those took about a quarter of the CPU
away from the import they were watching.
"""
import base64
import http.client
import os
import signal
import sys
import time
import urllib.parse

LIMIT_S = 15 * 60
stop = False
parent = os.getppid()
deadline = time.monotonic() + LIMIT_S


def on_term(signum, frame):
    global stop
    stop = True


def running():
    return not stop and os.getppid() == parent and time.monotonic() < deadline


def rss(pid, out):
    peak = 0
    path = f"/proc/{pid}/status"
    while running():
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        kib = int(line.split()[1])
                        if kib > peak:
                            peak = kib
                            with open(out, "w") as o:
                                o.write(f"{peak}\n")
                        break
        except (OSError, ValueError):
            pass
        time.sleep(0.2)


def exchanges(out):
    url = urllib.parse.urlsplit(os.environ["MACHTIGEN_URL"])
    secret = f"{os.environ['PORTAL_CLIENT_ID']}:{os.environ['PORTAL_CLIENT_SECRET']}"
    token, subject, scope = (sys.stdin.readline().strip() for _ in range(3))
    body = urllib.parse.urlencode({
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
        "subject_token": token,
        "requested_subject": subject,
        "scope": scope,
    })
    headers = {
        "Authorization": "Basic " + base64.b64encode(secret.encode()).decode(),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    conn = None
    with open(out, "a") as o:
        while running():
            t0 = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
                conn.request("POST", "/oauth2/token", body, headers)
                r = conn.getresponse()
                r.read()
                status = r.status
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                status = 0
                if conn is not None:
                    conn.close()
                conn = None
            o.write(f"{status:03d} {time.monotonic() - t0:.6f}\n")
            o.flush()
            time.sleep(0.1)


def main():
    signal.signal(signal.SIGTERM, on_term)
    if len(sys.argv) == 4 and sys.argv[1] == "rss":
        rss(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "exchanges":
        exchanges(sys.argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
