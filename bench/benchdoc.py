"""What every benchmark shares: the machine's name, its own section of docs/benchmarks.md, and
child processes measured alone (wall, CPU and peak RSS of that child only)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def commit_label() -> str:
    """HEAD's short hash, "+dirty" when a tracked file differs from it (scratch files beside
    the code do not count): the commit a figure was measured at."""
    def git(*argv: str) -> str:
        return subprocess.run(["git", *argv], cwd=REPO, capture_output=True,
                              text=True).stdout.strip()
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else "")


def save_json(path: Path | None, data) -> None:
    """A benchmark's raw figures (--json), for `--render-only` to render again later."""
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def publish(heading: str, text: str, write: bool) -> None:
    """Print a benchmark's section and (unless --no-write) put it into docs/benchmarks.md."""
    print("\n" + text)
    if write:
        write_section(heading, text)
        print(f"wrote the section to {DOC}")


def write_section(heading: str, text: str) -> None:
    """Replace the section that starts with `heading` ("## ...") in docs/benchmarks.md, or
    append it; other sections are left as they are."""
    DOC.parent.mkdir(parents=True, exist_ok=True)
    doc = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    lines = doc.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        doc = doc.rstrip("\n") + "\n\n" + text
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
                   len(lines))
        tail = "".join(lines[end:])
        doc = "".join(lines[:start]) + text + ("\n" + tail if tail else "")
    DOC.write_text(doc)


def run_child(argv: list[str], log_path: Path, timeout_s: float | None = None
              ) -> tuple[int, float, float, float]:
    """Run argv with its output to log_path; (exit code, wall s, peak RSS MiB, CPU s) of that
    child alone (os.wait4), killed after timeout_s if given."""
    with open(log_path, "w") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = None if timeout_s is None else started + timeout_s
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if deadline is not None and time.perf_counter() > deadline:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                log.write(f"\n[bench] killed after {timeout_s:.0f} s\n")
                break
            time.sleep(0.2)
        wall = time.perf_counter() - started
    cpu = usage.ru_utime + usage.ru_stime
    return os.waitstatus_to_exitcode(status), wall, usage.ru_maxrss / 1024, cpu  # maxrss: KiB


def checked_child(argv: list[str], log_path: Path) -> tuple[float, float, float]:
    """run_child that must succeed: (wall s, peak RSS MiB, CPU s); else the log's tail is raised."""
    rc, wall, rss, cpu = run_child(argv, log_path)
    if rc != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({rc}); log {log_path}:\n"
                           f"{log_path.read_text()[-3000:]}")
    return wall, rss, cpu
