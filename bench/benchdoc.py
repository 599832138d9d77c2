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


def panel_plot(panels: dict[str, tuple[list[str], dict[str, list[float]]]], path: Path,
               xlabel: str, ylabel: str, bold: tuple[str, ...] = (), panel_width: float = 5.0,
               rotation: int = 20) -> None:
    """A row of panels, {title: (x labels, {model: values})}, a line per model and a legend on
    each. One colour per model across the panels: a panel without a model must not shift the
    colours of the models after it. `bold`: models drawn thicker."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    models = list(dict.fromkeys(m for _, lines in panels.values() for m in lines))
    colour = {m: f"C{i % 10}" for i, m in enumerate(models)}
    fig = Figure(figsize=(panel_width * len(panels), 4))
    FigureCanvasAgg(fig)
    for i, (title, (labels, lines)) in enumerate(panels.items(), start=1):
        ax = fig.add_subplot(1, len(panels), i)
        for m, values in lines.items():
            ax.plot(labels, values, marker="o", label=m, color=colour[m],
                    linewidth=2.5 if m in bold else 1.2)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.tick_params(axis="x", labelrotation=rotation)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def run_diagnosis_args(argv: list[str] | None, description: str, default_runs_help: str,
                       default_out: Path):
    """The arguments of a diagnosis over `make results` runs' workspaces: --run NAME
    (repeatable; None: the default runs) and --out FILE."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--run", action="append", default=None, metavar="NAME",
                        help="a `make results` run with a workspace here (repeatable; default: "
                             f"{default_runs_help})")
    parser.add_argument("--out", type=Path, default=default_out)
    return parser.parse_args(argv)


def write_doc_with_plot(out: Path, render, draw) -> None:
    """Write `out` from render(its plot's path relative to it) and the plot, img/<stem>.png
    beside it, from draw(path). The text is rendered first: the commit label it holds must not
    count the freshly drawn plot as a change."""
    plot = out.parent / "img" / f"{out.stem}.png"
    text = render(str(plot.relative_to(out.parent)))
    draw(plot)
    out.write_text(text)
    print(f"wrote {out} and {plot}")


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
