#!/usr/bin/env python3
"""Plots of a slow_links.py --json report (docs/pipeline.md, "Planning a pipeline").

  fps-vs-link.png   frames/s against link bandwidth, per node mix: the plan's prediction
                    (line), what was measured (points), the equal-compute split (dashed, hollow)
  timeline.png      one frame through the planned stages at each link rate: compute, codec
                    and transfer per stage, the bottleneck stage marked

matplotlib comes from Debian's python3-matplotlib when installed; otherwise this script makes
a virtual environment under build/plot-venv, installs matplotlib there and runs itself in it.
Usage: plot_slow_links.py REPORT.json [--out DIR]
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
VENV = os.path.join(ROOT, "build", "plot-venv")


def ensure_matplotlib():
    try:
        import matplotlib  # noqa: F401
        return
    except ImportError:
        pass
    python = os.path.join(VENV, "bin", "python3")
    if os.path.abspath(sys.executable) == os.path.abspath(python):
        raise SystemExit("plot: matplotlib is still missing in " + VENV)
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        subprocess.run([python, "-m", "pip", "install", "--quiet", "matplotlib"], check=True)
    os.execv(python, [python] + sys.argv)


def fps_vs_link(report, path):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.2))
    mixes = sorted({r["mix"] for r in report["results"] if "plan" in r})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, mix in enumerate(mixes):
        rows = sorted((r for r in report["results"] if r.get("mix") == mix and "plan" in r),
                      key=lambda r: r["probe_mbps"])
        x = [link_rate(r) for r in rows]
        c = colors[i % len(colors)]
        # The prediction from the calibration before the runs and the one after: the band
        # is how far the machine's load moved meanwhile.
        before = [r["plan"]["predicted_fps"] for r in rows]
        after = [r.get("predicted_fps_after", r["plan"]["predicted_fps"]) for r in rows]
        ax.plot(x, [(a + b) / 2 for a, b in zip(before, after)], "-", color=c,
                label=f"{mix}: plan, predicted")
        ax.fill_between(x, [min(a, b) for a, b in zip(before, after)],
                        [max(a, b) for a, b in zip(before, after)], color=c, alpha=0.15)
        ax.plot(x, [r["measured_fps"] for r in rows], "o", color=c, label=f"{mix}: plan, measured")
        ax.plot(x, [r.get("naive_predicted_fps_mean", r["plan"]["naive"]["predicted_fps"])
                    for r in rows], "--", color=c, alpha=0.6,
                label=f"{mix}: equal-compute split, predicted")
        nx = [link_rate(r) for r in rows if "naive_measured_fps" in r]
        ny = [r["naive_measured_fps"] for r in rows if "naive_measured_fps" in r]
        ax.plot(nx, ny, "o", mfc="none", color=c, label=f"{mix}: equal-compute split, measured")
    ax.set_xscale("log")
    ax.set_xlabel("link rate, Mbit/s with headers (probe-link's line_mbps over the tbf-shaped veth)")
    ax.set_ylabel("frames per second")
    ax.set_title(f"{report['model']}: two nodes, prediction and measurement")
    ax.set_ylim(bottom=0)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def link_rate(row):
    """The rate plan was given: probe-link's line_mbps (headers counted), or, in reports from
    before the planner counted headers, the payload rate it was given then."""
    return row.get("probe_line_mbps", row["probe_mbps"])


def timeline(report, path):
    import matplotlib.pyplot as plt
    rows = [r for r in report["results"] if "plan" in r]
    mixes = sorted({r["mix"] for r in rows})
    mix = mixes[0]
    rows = sorted((r for r in rows if r["mix"] == mix), key=lambda r: -r["probe_mbps"])
    fig, ax = plt.subplots(figsize=(8, 1.0 + 0.9 * len(rows)))
    colors = {"compute": "#4c72b0", "codec": "#dd8452", "io": "#c44e52", "transfer": "#55a868"}
    labels_done = set()
    for y, r in enumerate(rows):
        t = 0.0
        plan = r["plan"]
        for s in plan["stages"]:
            for part, key in (("compute", "compute_ms"), ("codec", "codec_ms"),
                              ("io", "io_ms"), ("transfer", "transfer_ms")):
                width = s.get(key, 0)  # io_ms: reports from before the links were charged
                if width <= 0:
                    continue
                ax.barh(y, width, left=t, color=colors[part], edgecolor="white",
                        label=part if part not in labels_done else None)
                labels_done.add(part)
                if part == "compute":
                    text = f"{s['node']}\n{s['layers']}"
                    ax.text(t + width / 2, y, text, ha="center", va="center", fontsize=6,
                            color="white")
                t += width
        b = plan["stages"][plan["bottleneck_stage"]]
        predicted = r.get("predicted_fps_mean", plan["predicted_fps"])
        ax.text(t + 2, y, f"{predicted:.1f} fps predicted, {r['measured_fps']:.1f} "
                f"measured; bottleneck: stage {plan['bottleneck_stage']} ({b['node']})",
                va="center", fontsize=7)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{link_rate(r):.0f} Mbit/s" for r in rows])
    ax.set_xlabel("milliseconds after the frame enters the first stage (the plan's model)")
    ax.set_title(f"{report['model']}, mix '{mix}': one frame through the planned stages")
    ax.set_xlim(right=ax.get_xlim()[1] * 1.8)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("report")
    p.add_argument("--out", default=".")
    args = p.parse_args()
    with open(args.report) as f:
        report = json.load(f)
    if "results" not in report or not any("plan" in r for r in report["results"]):
        raise SystemExit(f"plot: {args.report} holds no measured result "
                         f"({report.get('skipped', 'empty')})")
    ensure_matplotlib()
    import matplotlib
    matplotlib.use("Agg")
    os.makedirs(args.out, exist_ok=True)
    fps_vs_link(report, os.path.join(args.out, "fps-vs-link.png"))
    timeline(report, os.path.join(args.out, "timeline.png"))
    print(f"plot: wrote {args.out}/fps-vs-link.png and {args.out}/timeline.png")


if __name__ == "__main__":
    main()
