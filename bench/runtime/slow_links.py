#!/usr/bin/env python3
"""Slow links: does the planner's prediction hold? (issue 19, point 3; docs/pipeline.md)

Two "nodes" are network namespaces joined by a veth pair shaped with tc tbf (netem is not
available on these machines). Each node is this machine's own inventory restricted to some
cores ("cpus": [..]); a slow node also runs under a CPU quota (cgroup v1 cpu.cfs_quota_us),
and its calibration is measured under that quota too. For each link rate and node mix the
bench calibrates both nodes, measures the link with `probe-link`, asks `plan` for the best
placement and the naive equal-compute split, runs both as processes (a stage per node,
pinned with `stage --cpus`, gRPC over the veth between nodes, shm within one) and compares
the measured frames per second with the prediction.

Needs root (ip netns, tc, cgroups); without it prints why and exits 0 with "skipped".
Usage: slow_links.py [--bin build/runtime/edgefd-pipeline] [--rates 1000,100,20]
                     [--mixes same,fast-slow] [--repeats 3] [--seconds 8] [--json]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

NS = ("edgefd-bench-a", "edgefd-bench-b")
IP = ("10.199.7.1", "10.199.7.2")
VETH = ("edgefd-va", "edgefd-vb")
CGROUP = "/sys/fs/cgroup/cpu/edgefd-bench-slow"


def sh(*cmd, check=True, **kw):
    return subprocess.run(list(cmd), check=check, capture_output=True, text=True, **kw)


def can_run():
    if os.geteuid() != 0:
        return "needs root (ip netns, tc, cgroups)"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    r = sh("ip", "netns", "add", "edgefd-bench-probe", check=False)
    if r.returncode != 0:
        return "cannot create a network namespace: " + r.stderr.strip()
    sh("ip", "netns", "del", "edgefd-bench-probe", check=False)
    return None


def setup_netns():
    teardown_netns()
    for ns in NS:
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "link", "add", VETH[0], "netns", NS[0], "type", "veth", "peer", "name", VETH[1],
       "netns", NS[1])
    for ns, dev, ip in zip(NS, VETH, IP):
        sh("ip", "-n", ns, "addr", "add", ip + "/24", "dev", dev)
        sh("ip", "-n", ns, "link", "set", dev, "up")


def teardown_netns():
    for ns in NS:
        sh("ip", "netns", "del", ns, check=False)


def shape(rate_mbit):
    """tbf on both ends: rate, a burst of at least 64 KiB (a GSO packet must fit)."""
    burst = max(128 * 1024, int(rate_mbit * 1e6 / 8 * 0.002))
    for ns, dev in zip(NS, VETH):
        sh("ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev", dev, "root", "tbf",
           "rate", f"{rate_mbit}mbit", "burst", str(burst), "latency", "100ms")


def qdisc_bytes(ns):
    """Bytes the shaped qdisc on `ns`'s veth has sent (tc counts each packet's whole length,
    Ethernet header included: what tbf charges its rate for)."""
    r = sh("ip", "netns", "exec", NS[ns], "tc", "-s", "-j", "qdisc", "show", "dev", VETH[ns])
    return sum(q.get("bytes", 0) for q in json.loads(r.stdout) if q.get("root"))


CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def cpu_times():
    """Per CPU, /proc/stat's times in ms: where each core's time went (another program's
    share, the kernel's network work in softirq, the hypervisor's steal)."""
    tick = 1000.0 / os.sysconf("SC_CLK_TCK")
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            parts = line.split()
            if parts[0].startswith("cpu") and parts[0] != "cpu":
                out[parts[0]] = [int(v) * tick for v in parts[1:1 + len(CPU_FIELDS)]]
    return out


def setup_cgroup(quota):
    if not os.path.isdir("/sys/fs/cgroup/cpu"):
        return False
    os.makedirs(CGROUP, exist_ok=True)
    # A short period: the throttling is spread evenly over every layer, so a calibration's
    # short runs see the same slow core as a long pipeline run.
    with open(os.path.join(CGROUP, "cpu.cfs_period_us"), "w") as f:
        f.write("2000")
    with open(os.path.join(CGROUP, "cpu.cfs_quota_us"), "w") as f:
        f.write(str(int(2000 * quota)))
    return True


def teardown_cgroup():
    try:
        os.rmdir(CGROUP)
    except OSError:
        pass


def wrap(node, argv):
    """argv run as a process of `node`: in its namespace, on its cores alone (all its threads:
    gRPC's, the source's, the sink's, as on a board of its own), and for a slow node under
    its CPU quota."""
    cmd = ["ip", "netns", "exec", NS[node["ns"]], "taskset", "-c",
           ",".join(map(str, node["cpus"]))] + argv
    if node.get("slow"):
        cmd = ["sh", "-c", f'echo $$ > {CGROUP}/cgroup.procs && exec "$@"', "sh"] + cmd
    return cmd


class Bench:
    def __init__(self, args, work):
        self.bin = os.path.abspath(args.bin)
        self.args = args
        self.work = work
        self.labels = json.loads(sh(args.labeller, "--dry-run", "--output", "json",
                                    "--no-udev").stdout)
        self.port = 7100

    def next_port(self):
        self.port += 1
        return self.port

    def node_files(self, nodes):
        """Calibrates every node at once (their cores share this machine's memory and caches,
        as the pipeline's stages will) and writes their node files."""
        paths, procs = [], []
        for node in nodes:
            cal = os.path.join(self.work, node["name"] + "-cal.json")
            procs.append(subprocess.Popen(
                wrap(node, [self.bin, "calibrate", "--model", self.args.model, "--cpus",
                            ",".join(map(str, node["cpus"])), "--iterations", "7", "--out", cal]),
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
            doc = dict(self.labels)
            doc.update({"node": node["name"], "cpus": node["cpus"], "calibration": cal})
            paths.append(os.path.join(self.work, node["name"] + ".json"))
            with open(paths[-1], "w") as f:
                json.dump(doc, f)
        for p in procs:
            _, err = p.communicate(timeout=600)
            if p.returncode != 0:
                raise RuntimeError("calibrate: " + err)
        return paths

    def probe(self, nodes):
        port = self.next_port()
        server = subprocess.Popen(wrap(nodes[1], [self.bin, "probe-link", "--listen",
                                                  f"{IP[1]}:{port}", "--timeout-ms", "20000",
                                                  "--json"]),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # The client retries its connect until the server listens (at most 10 s).
        deadline = time.time() + 10
        while True:
            r = sh(*wrap(nodes[0], [self.bin, "probe-link", "--connect", f"{IP[1]}:{port}",
                                    "--seconds", "2", "--timeout-ms", "10000", "--json"]),
                   check=False)
            if r.returncode == 0 or time.time() > deadline:
                break
        out, err = server.communicate(timeout=60)
        if r.returncode != 0:
            raise RuntimeError("probe-link failed: " + r.stderr + err)
        # mbps: TCP payload; line_mbps: with every segment's headers, the rate plan takes.
        return json.loads(r.stdout)

    def plan(self, files, mbps, price=None):
        extra = []
        if price is not None:
            path = os.path.join(self.work, "price.json")
            with open(path, "w") as f:
                json.dump(price, f)
            extra = ["--price", path]
        r = sh(self.bin, "plan", "--model", self.args.model,
               *sum((["--nodes", f] for f in files), []), "--link-mbps", str(mbps), "--naive",
               "2", "--json", *extra)
        return json.loads(r.stdout)

    def run(self, plan, nodes, frames):
        """Runs `plan`'s stages as processes; the sink's report, with the bytes per frame the
        shaped qdiscs of the stages that send across the veth put on the link."""
        by_name = {n["name"]: n for n in nodes}
        stages = plan["stages"]
        addrs = []
        for k, s in enumerate(stages):
            prev_node = stages[k - 1]["node"] if k > 0 else stages[0]["node"]
            if k > 0 and prev_node != s["node"]:
                addrs.append(f"{IP[by_name[s['node']]['ns']]}:{self.next_port()}")
            else:
                addrs.append(f"shm:edgefd-bench-{os.getpid()}-{k}")
        sink_addr = f"shm:edgefd-bench-{os.getpid()}-sink"
        senders = sorted({by_name[s["node"]]["ns"] for s in stages if s["remote"]})
        sent_before = {ns: qdisc_bytes(ns) for ns in senders}
        cpu_before = cpu_times()
        last = by_name[stages[-1]["node"]]
        first = by_name[stages[0]["node"]]
        procs = []
        model = ["--model", self.args.model]
        sink = subprocess.Popen(wrap(last, [self.bin, "sink", *model, "--listen", sink_addr,
                                            "--policy", "block", "--timeout-ms", "120000",
                                            "--json"]),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            for k in reversed(range(len(stages))):
                s = stages[k]
                node = by_name[s["node"]]
                argv = [self.bin, "stage", *model, "--stages", str(len(stages)), "--index",
                        str(k), "--layers", f"{s['first_layer']}:{s['last_layer'] + 1}",
                        "--threads", str(len(s["cpus"])), "--cpus",
                        ",".join(map(str, s["cpus"])), "--policy", "block", "--listen",
                        addrs[k].replace(IP[node["ns"]], "0.0.0.0") if not addrs[k].startswith(
                            "shm:") else addrs[k],
                        "--next", addrs[k + 1] if k + 1 < len(stages) else sink_addr,
                        "--quiet"]
                if k > 0 and stages[k - 1]["wire"] not in (None, "float32"):
                    argv += ["--wire-in", stages[k - 1]["wire"]]
                if k + 1 < len(stages) and s["wire"] not in (None, "float32"):
                    argv += ["--wire-out", s["wire"]]
                procs.append(subprocess.Popen(wrap(node, argv), stdout=subprocess.DEVNULL,
                                              stderr=subprocess.PIPE, text=True))
            source = sh(*wrap(first, [self.bin, "source", *model, "--frames", str(frames),
                                      "--next", addrs[0]]), check=False)
            if source.returncode != 0:
                raise RuntimeError("source: " + source.stderr)
            out, err = sink.communicate(timeout=600)
            if sink.returncode != 0:
                raise RuntimeError("sink: " + err)
            report = json.loads(out)
            cpu_after = cpu_times()
            if report.get("frames"):
                report["cpu_ms_per_frame"] = {
                    cpu: {name: round((b - a) / report["frames"], 2)
                          for name, a, b in zip(CPU_FIELDS, cpu_before[cpu], cpu_after[cpu])}
                    for cpu in cpu_after if cpu in cpu_before}
            if senders and report.get("frames"):
                sent = sum(qdisc_bytes(ns) - sent_before[ns] for ns in senders)
                report["link_bytes_per_frame"] = round(sent / report["frames"], 1)
            return report
        finally:
            for p in procs + [sink]:
                if p.poll() is None:
                    p.terminate()
            for p in procs + [sink]:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()

    def measure(self, plans, nodes):
        """Runs each plan `repeats` times, interleaved; the median fps of each and the runs."""
        runs = [[] for _ in plans]
        for _ in range(self.args.repeats):
            for i, plan in enumerate(plans):
                frames = max(20, int(plan["predicted_fps"] * self.args.seconds))
                runs[i].append(self.run(plan, nodes, frames))
        return [(statistics.median(r["fps"] for r in rs), rs) for rs in runs]


def mixes(names):
    out = []
    for name in names:
        if name == "same":
            out.append(("same", [{"name": "node-a", "cpus": [0], "ns": 0},
                                 {"name": "node-b", "cpus": [1], "ns": 1}]))
        elif name == "fast-slow":
            out.append(("fast-slow", [{"name": "node-fast", "cpus": [0], "ns": 0},
                                      {"name": "node-slow", "cpus": [1], "ns": 1,
                                       "slow": True}]))
        else:
            raise SystemExit(f"unknown mix {name} (same, fast-slow)")
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bin", default=os.path.join(root, "build/runtime/edgefd-pipeline"))
    p.add_argument("--labeller", default=os.path.join(root, "build/labeller/edgefd-labeller"))
    p.add_argument("--model", default="yolo-tiny")
    p.add_argument("--rates", default="1000,100,20")
    p.add_argument("--mixes", default="same,fast-slow")
    p.add_argument("--slow-quota", type=float, default=0.5, help="CPUs the slow node gets")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seconds", type=float, default=8)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    why = can_run()
    if why:
        print(json.dumps({"skipped": why}) if args.json else f"slow_links: skipped: {why}")
        return 0
    if os.cpu_count() < 2:
        print(json.dumps({"skipped": "needs 2 CPUs"}) if args.json else "skipped: 2 CPUs")
        return 0
    results = []
    work = tempfile.mkdtemp(prefix="edgefd-slow-links-")
    try:
        setup_netns()
        have_cgroup = setup_cgroup(args.slow_quota)
        bench = Bench(args, work)
        for mix, nodes in mixes(args.mixes.split(",")):
            if any(n.get("slow") for n in nodes) and not have_cgroup:
                results.append({"mix": mix, "skipped": "no cgroup v1 cpu controller"})
                continue
            for rate in [float(r) for r in args.rates.split(",")]:
                shape(rate)
                load_before = os.getloadavg()
                # Calibrated right before and again right after the runs: on a shared machine
                # the load moves, and the two predictions say how far it moved meanwhile.
                files = bench.node_files(nodes)
                probe = bench.probe(nodes)
                mbps = probe["mbps"]
                # What plan --link-mbps takes: the rate with headers (an older build printed
                # only the payload's, and charged payload bytes alone).
                line_mbps = probe.get("line_mbps", mbps)
                plan = bench.plan(files, line_mbps)
                naive = plan["naive"]
                same = [s["first_layer"] for s in naive["stages"]] == [
                    s["first_layer"] for s in plan["stages"]] and [
                    s["wire"] for s in naive["stages"]] == [s["wire"] for s in plan["stages"]]
                measured = bench.measure([plan] if same else [plan, naive], nodes)
                fps, runs = measured[0]
                files = bench.node_files(nodes)
                after = bench.plan(files, line_mbps, price=plan)
                naive_after = bench.plan(files, line_mbps, price=naive)
                predicted = (plan["predicted_fps"] + after["predicted_fps"]) / 2
                entry = {"mix": mix, "nodes": nodes, "rate_mbit": rate, "probe_mbps": mbps,
                         "probe_line_mbps": line_mbps, "probe_mss": probe.get("mss"),
                         "probe_mtu": probe.get("mtu"),
                         "load_before": [round(x, 2) for x in load_before],
                         "load_after": [round(x, 2) for x in os.getloadavg()],
                         "plan": plan, "predicted_fps_after": after["predicted_fps"],
                         "predicted_fps_mean": round(predicted, 2),
                         "load_drift": round(after["predicted_fps"] / plan["predicted_fps"], 3),
                         "measured_fps": round(fps, 2),
                         "runs": [{"fps": r["fps"], "stage_compute_ms": r["stage_compute_ms"],
                                   "stage_comm_ms": r["stage_comm_ms"],
                                   "stage_wait_ms": r.get("stage_wait_ms"),
                                   "link_bytes_per_frame": r.get("link_bytes_per_frame"),
                                   "cpu_ms_per_frame": r.get("cpu_ms_per_frame")}
                                  for r in runs]}
                # Each stage's compute in the runs against the calibrations' (before and after):
                # where a compute-bound prediction misses, this says which stage and by how much.
                entry["stage_compute_vs_calibrated"] = [
                    round(statistics.median(r["stage_compute_ms"][k] for r in runs)
                          / ((s["compute_ms"] + a["compute_ms"]) / 2), 3)
                    for k, (s, a) in enumerate(zip(plan["stages"], after["stages"]))
                    if all(k < len(r["stage_compute_ms"]) for r in runs)]
                # The bytes the model charges the link per frame against what tc counted.
                model_bytes = sum(s.get("link_bytes", 0) for s in plan["stages"])
                counted = [r["link_bytes_per_frame"] for r in runs
                           if r.get("link_bytes_per_frame")]
                if model_bytes and counted:
                    entry["link_bytes_model"] = model_bytes
                    entry["link_bytes_measured"] = statistics.median(counted)
                entry["ratio"] = round(fps / predicted, 3)
                entry["within_15pct"] = abs(entry["ratio"] - 1) <= 0.15
                link_bound = any(s["remote"] and s["transfer_ms"] >= s["compute_ms"]
                                 for s in naive["stages"])
                naive_pred = (naive["predicted_fps"] + naive_after["predicted_fps"]) / 2
                entry["naive_predicted_fps_mean"] = round(naive_pred, 2)
                entry["naive_link_bound"] = link_bound
                nfps = fps if same else measured[1][0]
                entry["naive_measured_fps"] = round(nfps, 2)
                entry["naive_same_as_plan"] = same
                entry["plan_beats_naive"] = same or fps > nfps
                results.append(entry)
                if not args.json:
                    print(f"{mix:10s} {rate:7.0f} Mbit/s (probe {line_mbps:7.1f}): plan "
                          f"{predicted:6.2f} fps predicted (drift {entry['load_drift']:.2f}), "
                          f"{fps:6.2f} measured ({entry['ratio']:.2f}); equal-compute split "
                          f"{naive_pred:6.2f} predicted, {nfps:6.2f} measured"
                          f"{' (the same placement)' if same else ''}; load "
                          f"{entry['load_before'][0]:.1f}..{entry['load_after'][0]:.1f}",
                          flush=True)
    finally:
        teardown_netns()
        teardown_cgroup()
        shutil.rmtree(work, ignore_errors=True)
    report = {"bench": "slow_links", "model": args.model, "repeats": args.repeats,
              "load_avg": os.getloadavg(), "results": results}
    if args.json:
        print(json.dumps(report, indent=1))
    ok = all(r.get("within_15pct", True) and
             (r.get("plan_beats_naive", True) or not r.get("naive_link_bound")) for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
