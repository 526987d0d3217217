"""Test-wide settings."""

import os

import torch

# The tests run many tiny models; on 2 cores torch's intra-op threads cost far more in
# synchronisation than they gain (measured: an overfit test took 1.4 s with 1 thread and over
# 70 s with the default when the other core was busy). Worker processes inherit the env var.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_audio_issue_memory():
    """Each test sees audio warnings as a fresh process would: none reported yet."""
    from workbench.features import audio_io

    audio_io._REPORTED.clear()
    yield
