"""Ctrl-C in a command that creates nothing stops it with one line, never a traceback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tests.fakes.kube_api import write_kubeconfig

CATALOG = Path(__file__).resolve().parents[2] / "experiments" / "catalog.yaml"


def test_ctrl_c_while_waiting_on_the_api_server_exits_3_without_a_traceback(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts the connection and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        kubeconfig = write_kubeconfig(tmp_path, f"http://127.0.0.1:{silent.getsockname()[1]}")
        env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "chaoslab", "hypothesis", "--rules", "k8s://monitoring/",
             "--service", "payment", "--catalog", str(CATALOG)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            silent.settimeout(60)
            conn, _ = silent.accept()  # the command is now blocked on the API server
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=60)
            conn.close()
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 3
    assert "interrupted" in err
    assert "Traceback" not in err
