"""`invoke profile` prints what the user needs, not kineto's CUDA probe on a CPU-only machine.

(`invoke sweep`'s alembic plugin lines: test_cli.py::test_optuna_sweep_runs_offline.)
"""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration

PROBE = "gpuGetDeviceCount failed"
TRACE = (
    "import torch\n"
    "with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]):\n"
    "    torch.ones(3).sum()\n"
)


def python(*args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "KINETO_LOG_LEVEL"}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**environ, **env},
    )  # fmt: skip


def test_profile_prints_no_cuda_probe(tmp_path, data_dirs):
    control = python("-c", TRACE, KINETO_LOG_LEVEL="0")  # kineto's own default verbosity
    if PROBE not in control.stderr:
        pytest.skip("this torch build or machine does not print the CUDA probe (a GPU?)")
    proc = python(
        "profiling/profile_training.py", "--epochs", "3", "--repeats", "1",
        "--out", str(tmp_path / "out"), "--processed", str(data_dirs["processed"]),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "epoch time: median" in proc.stdout
    assert "torch.profiler, top 10 operators" in proc.stdout
    assert PROBE not in proc.stdout + proc.stderr
    assert "USDT" not in proc.stdout + proc.stderr
    assert proc.stderr == ""
    assert (tmp_path / "out" / "train_trace.json").is_file()
