"""What a process costs, read from Linux's /proc (no psutil dependency)."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Sequence

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat from its third field (the state) on."""
    with open(f"/proc/{pid}/stat") as stat:
        text = stat.read()
    # The command name may hold spaces and parentheses: count fields after the last ")".
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int | Sequence[int]) -> float:
    """User plus system CPU time of the process, all its threads included (SQLite's too);
    of several processes together."""
    if not isinstance(pid, int):
        return sum(cpu_seconds(one) for one in pid)
    fields = _stat_fields(pid)
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / _TICKS


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a server that forks a process per client (PostgreSQL): the process's own,
    its children's still running, and those it has reaped."""
    fields = _stat_fields(pid)
    reaped = (int(fields[13]) + int(fields[14])) / _TICKS
    return cpu_seconds(pid) + reaped + sum(map(_cpu_unless_gone, children(pid)))


def _cpu_unless_gone(pid: int) -> float:
    """A child that exited since it was listed: its time is its parent's reaped time now."""
    try:
        return cpu_seconds(pid)
    except OSError:
        return 0.0


def children(pid: int) -> list[int]:
    """The live child processes of `pid`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(_stat_fields(int(entry))[1]) == pid:
                    found.append(int(entry))
            except (OSError, ValueError):
                continue  # gone meanwhile
    return found


def open_files(pid: int) -> int:
    """How many file descriptors the process holds (sockets included)."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def machine_busy_seconds() -> float:
    """CPU time spent by every process of the machine, all cores together: what the server and
    the generator did not use of it was another process competing with the run."""
    with open("/proc/stat") as stat:
        fields = stat.readline().split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[1:9])
    return (user + nice + system + irq + softirq + steal) / _TICKS


def rss_bytes(pid: int) -> int:
    """Resident set size of the process."""
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE


def raise_open_files_limit(needed: int) -> int:
    """Raise the soft limit on open files towards `needed` (at most the hard limit); returns
    the limit now in force. Children inherit it: raise it before starting a server too."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        soft = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


def open_files_limit(pid: int) -> int | None:
    """The soft limit on open files in force in the process; None: unlimited."""
    with open(f"/proc/{pid}/limits") as limits:
        for line in limits:
            if line.startswith("Max open files"):
                soft = line.split()[3]
                return None if soft == "unlimited" else int(soft)
    raise RuntimeError(f"no open files limit in /proc/{pid}/limits")


def ephemeral_ports() -> int:
    """How many local ports the kernel chooses from for one address's outgoing connections."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as ports:
        low, high = map(int, ports.read().split())
    return high - low + 1


def wait_idle(
    pid: int | Sequence[int], timeout: float, window: float = 0.5, quiet: float = 0.05
) -> bool:
    """Until the process (several: together) uses less than `quiet` of a core over `window`
    seconds, e.g. when it has finished with chargers that disconnected; False if it is still
    busy at `timeout`."""
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        before = cpu_seconds(pid)
        time.sleep(window)
        if cpu_seconds(pid) - before < quiet * window:
            return True
    return False
