"""Shared by the app benchmarks: run `app.py` as its own process and read its memory."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx

from studio.testing import free_port

ROOT = Path(__file__).resolve().parent.parent


def rss_mb(pid: int) -> float:
    """Resident set size of a process and all its descendants, in MB (from /proc)."""
    total = 0
    for p in [pid] + descendants(pid):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def descendants(pid: int) -> list[int]:
    out = []
    for child in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(FileNotFoundError):
            for c in child.read_text().split():
                out += [int(c)] + descendants(int(c))
    return out


@contextlib.contextmanager
def studio_process(catalog: str | None = None, *, threads: int | None = None) -> Iterator[tuple[subprocess.Popen, str]]:
    """`python app.py` on a free port; yields (process, url) once it answers, stops it afterwards."""
    port = free_port()
    cmd = [sys.executable, str(ROOT / "app.py"), "--port", str(port)] + (["--catalog", catalog] if catalog else [])
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False")
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"app.py exited: {proc.stderr.read()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=5).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("app.py did not answer within 300 s")
            time.sleep(0.5)
        yield proc, url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
