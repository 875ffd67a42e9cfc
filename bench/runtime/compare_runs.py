#!/usr/bin/env python3
"""Interleaved A/B of two edgefd-pipeline builds on the same `run` (issue 19 point 4).

pipeline_bench's --pipeline-bin swaps only the stage processes (its source and sink are this
tree's code), and an older build may not take today's stage flags; this runs each build's own
`edgefd-pipeline run ... --json` in turn (baseline, candidate, baseline, ...), so that load on a
shared machine hits both alike, and prints per build the median fps, the median of each run's
1 / median interval, and the CPU seconds (user + sys, stage processes included) per 1000
frames: on a loaded machine wall-clock fps is mostly noise, CPU per frame much less so.

  bench/runtime/compare_runs.py --baseline-bin OLD/edgefd-pipeline \\
      [--pipeline-bin build/runtime/edgefd-pipeline] [--pairs 5] [--json] \\
      [-- run arguments; default: conv 1280x720, 4 stages over shm, block, 1000 frames]

The build before the shm ring's hardening is f63010b (104c140 hardened it): build it in a
scratch worktree (`git worktree add --detach ../old f63010b`) and pass its edgefd-pipeline.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys

DEFAULT_RUN = ["--model", "conv", "--width", "1280", "--height", "720", "--stages", "4",
               "--transport", "shm", "--policy", "block", "--frames", "1000"]


def one_run(binary, run_args):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([binary, "run", *run_args, "--json"], capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"{binary} run failed ({out.returncode}): {out.stderr[-2000:]}")
    report = json.loads(out.stdout.strip().splitlines()[-1])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    frames = max(1, report.get("frames_received", 1))
    return {"fps": report["fps"], "fps_median": report.get("fps_median", 0.0),
            "cpu_s_per_1000": 1000.0 * cpu / frames}


def main():
    argv = sys.argv[1:]
    run_args = DEFAULT_RUN
    if "--" in argv:
        cut = argv.index("--")
        argv, run_args = argv[:cut], argv[cut + 1:]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline-bin", required=True)
    p.add_argument("--pipeline-bin", default="build/runtime/edgefd-pipeline")
    p.add_argument("--pairs", type=int, default=5)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    builds = {"baseline": a.baseline_bin, "candidate": a.pipeline_bin}
    runs = {name: [] for name in builds}
    load_before = os.getloadavg()[0]
    for _ in range(a.pairs):
        for name, binary in builds.items():
            runs[name].append(one_run(binary, run_args))
    summary = {}
    for name, rs in runs.items():
        summary[name] = {key: round(statistics.median(r[key] for r in rs), 3)
                         for key in ("fps", "fps_median", "cpu_s_per_1000")}
        summary[name]["runs"] = rs
        each = ", ".join("%.0f" % r["fps"] for r in rs)
        print(f"{name:9} {builds[name]}: fps {summary[name]['fps']:.1f} (runs {each}), "
              f"1/median interval "
              f"{summary[name]['fps_median']:.1f}, CPU {summary[name]['cpu_s_per_1000']:.2f} s "
              f"per 1000 frames")
    b, c = summary["baseline"], summary["candidate"]
    ratios = {"fps": c["fps"] / b["fps"], "cpu_per_frame": c["cpu_s_per_1000"] /
              b["cpu_s_per_1000"]}
    print(f"candidate / baseline: fps x{ratios['fps']:.3f}, CPU per frame "
          f"x{ratios['cpu_per_frame']:.3f}; load average {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after, {os.cpu_count()} CPUs")
    if a.json:
        print(json.dumps({"run": run_args, "builds": builds, "summary": summary,
                          "ratios": ratios, "load_before": load_before,
                          "load_after": os.getloadavg()[0]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
