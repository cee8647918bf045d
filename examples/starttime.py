#!/usr/bin/env python3
"""Times confab start-ups on one data directory (docs/BENCHMARKS.md): the time from spawning
`BIN --data-dir DIR --listen 127.0.0.1:0` to its "listening on" line.

usage: python3 examples/starttime.py BIN DIR MODE REPS
  MODE clean: start, time, SIGTERM (a clean close), REPS times.
  MODE kill:  start, SIGKILL after 1 s, then time the next start (redb checks the file), SIGTERM.
  COLD=1 (root): sync and drop the page cache before every timed start.
Only 127.0.0.1 is used, every loop is bounded, and every server it starts is stopped."""
import os, signal, subprocess, sys, time

bin_, data, mode, reps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
cold = os.environ.get("COLD") == "1"

def start():
    """Starts the server; returns (process, seconds to the 'listening on' line, lines)."""
    if cold:
        subprocess.run(["sync"]); open("/proc/sys/vm/drop_caches", "w").write("3\n")
    t0 = time.monotonic()
    p = subprocess.Popen([bin_, "--data-dir", data, "--listen", "127.0.0.1:0"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env={k: v for k, v in os.environ.items() if k != "RUST_LOG"})
    lines = []
    deadline = t0 + 600
    for line in p.stdout:
        lines.append(line.rstrip())
        if "listening on" in line:
            return p, time.monotonic() - t0, lines
        if time.monotonic() > deadline:
            break
    p.kill(); raise SystemExit("no listening line: " + "\n".join(lines))

def stop(p, sig):
    p.send_signal(sig); p.wait(timeout=60)

for i in range(reps):
    if mode == "clean":
        p, t, lines = start()
        stop(p, signal.SIGTERM)
        print(f"clean start {i+1}: {t*1000:.0f} ms", flush=True)
    else:
        p, t, _ = start()
        time.sleep(1)
        stop(p, signal.SIGKILL)
        p, t, lines = start()
        checked = any("not closed cleanly" in l for l in lines)
        stop(p, signal.SIGTERM)
        print(f"start after SIGKILL {i+1}: {t*1000:.0f} ms (redb check logged: {checked})", flush=True)
