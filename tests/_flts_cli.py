"""Run the ``flts`` CLI from an end-to-end test and always let it clean up.

``subprocess.run`` answers any exception while it waits (pytest-timeout's, a Ctrl-C) with
SIGKILL, so an ``flts run`` killed that way never stops the services it started, and they run on
into the next test on the shared stack. Here the child gets SIGTERM first (``flts run`` stops its
services on it) and is killed only if it has not finished its clean-up in ``grace_s``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence


def run_cli(
    argv: Sequence[str], env: Mapping[str, str], timeout: float, grace_s: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """``subprocess.run(argv, capture_output=True, text=True, timeout=timeout)``, but a child
    interrupted by a timeout or any exception in the test is stopped with SIGTERM first."""
    with subprocess.Popen(
        list(argv), env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except BaseException:
            proc.terminate()
            try:
                proc.communicate(timeout=grace_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
            raise
    return subprocess.CompletedProcess(list(argv), proc.returncode, stdout, stderr)
