"""A real browser for the report tests: Debian's Chromium, headless, taking a screenshot of
a local file with no network at all."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")


def screenshot(
    page: Path, png: Path, *, profile: Path, width: int = 1200, height: int = 2000, timeout: float = 180.0
) -> subprocess.CompletedProcess[str]:
    """Render ``page`` (a local HTML file) into ``png``. The browser runs in its own process
    group, so a hung one is killed with all its helper processes."""
    args = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--screenshot={png}",
        f"--window-size={width},{height}",
        page.resolve().as_uri(),
    ]
    env = {**os.environ, "HOME": str(profile)}
    process = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=profile,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        raise AssertionError(f"chromium did not finish within {timeout:.0f}s:\n{err[-2000:]}") from None
    return subprocess.CompletedProcess(args, process.returncode, out, err)
