"""The demo's step lines: a heartbeat while a step runs (issue 14: a line at least every
10 s, so nobody wonders whether it hangs), silence after it is closed."""

from __future__ import annotations

import time

from dotcom_mobile.demo import _Steps


def test_heartbeat_while_a_step_runs_and_none_after_close(capsys):
    steps = _Steps(heartbeat_s=0.02)
    steps(2, "quantize", "int8 quantization")
    deadline = time.monotonic() + 10
    err = ""
    while "... quantize" not in err and time.monotonic() < deadline:
        time.sleep(0.05)
        err += capsys.readouterr().err
    assert "[2/5] int8 quantization" in err and "... quantize" in err
    summary = steps.summary()  # closes
    assert summary.startswith("done in ") and "quantize" in summary
    capsys.readouterr()
    time.sleep(0.2)
    assert "..." not in capsys.readouterr().err
