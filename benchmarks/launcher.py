"""Run a command and measure it, from a process that stays small.

Linux carries a process's peak resident memory over fork and exec, so the benchmarks start
measured commands from a forkserver worker that imports only this module.
"""

import os
import subprocess
import time


def launch(command: list[str]) -> tuple[float, int, float]:
    """Run a command: wall seconds, exit status, peak resident MB of it and its children."""
    start = time.perf_counter()
    process = subprocess.Popen(command)
    _pid, status, usage = os.wait4(process.pid, 0)  # this process and those it waited for
    return time.perf_counter() - start, status, usage.ru_maxrss / 1024
