#!/usr/bin/env python3
"""Markdown table from `pipeline_bench --json` output: report_table.py bench.json"""
import json
import sys


def main():
    d = json.load(open(sys.argv[1]))
    rows = d["rows"]
    key = {(r["model"], r["width"], r["height"], r["stages"], r["transport"]): r for r in rows}
    print("| model | frame | stages | inproc fps (median) | shm fps (median) | gRPC fps (median) "
          "| p50 latency ms inproc / shm / gRPC | CCR inproc / shm / gRPC |")
    print("|---|---|---|---|---|---|---|---|")
    seen = []
    for r in rows:
        k = (r["model"], r["width"], r["height"], r["stages"])
        if k in seen:
            continue
        seen.append(k)
        cells = []
        lat = []
        ccr = []
        for t in ("inproc", "shm", "grpc"):
            x = key.get(k + (t,))
            if x is None:
                cells.append("")
                lat.append("")
                ccr.append("")
                continue
            cells.append(f"{x['fps']:,.0f} ({x['fps_median']:,.0f})" +
                         (f", {x['drops']} dropped" if x["drops"] else "") +
                         (" **error**" if x["error"] else ""))
            lat.append(f"{x['latency_p50_ms']:.2f}")
            ccr.append(f"{x['ccr']:.2f}")
        stages = "monolithic" if r["stages"] == 1 else str(r["stages"])
        print(f"| {r['model']} | {r['width']}×{r['height']} | {stages} | " + " | ".join(cells) +
              f" | {' / '.join(v for v in lat if v)} | {' / '.join(v for v in ccr if v)} |")
    print()
    for t in d.get("targets", []):
        print(f"- {t['target']}: need {t['need_fps']:,.0f} fps, measured {t['fps']:,.1f} "
              f"(median interval {t['fps_median']:,.1f}) — {'met' if t['met'] else 'missed'}")


if __name__ == "__main__":
    main()
