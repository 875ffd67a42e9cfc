#!/usr/bin/env python3
"""Writes the CPU fixtures under testdata/cpu/<board>/: sysfs and procfs trees holding only
the files edgefd's CPU source reads. Run it from anywhere; it rewrites the board directories.

The values are public facts about each SoC: core types and MIDR part numbers from the cores'
reference manuals, capacity-dmips-mhz and OPP maxima from the mainline devicetrees (so
cpu_capacity is what the kernel computes: dmips x max MHz, normalised to 1024, rounded down),
and the file formats Linux uses (arch/arm64/kernel/cpuinfo.c, drivers/base/arch_topology.c,
drivers/base/topology.c, the cpufreq core, arch/x86/kernel/cpu/proc.c).
"""

import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def cpulist(ids):
    ids = sorted(ids)
    out, start = [], None
    for i, c in enumerate(ids):
        if start is None:
            start = c
        if i + 1 == len(ids) or ids[i + 1] != c + 1:
            out.append(str(start) if start == c else f"{start}-{c}")
            start = None
    return ",".join(out)


class Tree:
    def __init__(self, name):
        self.dir = os.path.join(HERE, name)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)

    def write(self, rel, data):
        path = os.path.join(self.dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)

    def link(self, rel, target):
        path = os.path.join(self.dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.symlink(target, path)


CPU = "sys/devices/system/cpu"


def arm_board(name, cpus, online=None, cpufreq=True, capacity=True, midr=True,
              cpuinfo="arm64", garbage_midr=None, old_kernel=False):
    """cpus: list of dicts with midr, capacity, khz, cluster, core (logical id = index)."""
    t = Tree(name)
    ids = list(range(len(cpus)))
    online = ids if online is None else online
    t.write(f"{CPU}/possible", cpulist(ids) + "\n")
    t.write(f"{CPU}/online", cpulist(online) + "\n")
    garbage_midr = garbage_midr or {}
    # cpufreq policies: one per cluster, named after its first CPU.
    policies = {}
    for i, c in enumerate(cpus):
        policies.setdefault(c["cluster"], i)
    for i, c in enumerate(cpus):
        d = f"{CPU}/cpu{i}"
        siblings = str(i)
        cluster_cpus = [j for j, o in enumerate(cpus) if o["cluster"] == c["cluster"]]
        if capacity:
            t.write(f"{d}/cpu_capacity", f"{c['capacity']}\n")
        t.write(f"{d}/topology/cluster_id", f"{c['cluster']}\n")
        t.write(f"{d}/topology/core_id", f"{c['core']}\n")
        t.write(f"{d}/topology/physical_package_id", "0\n")
        # core_cpus_list is Linux 5.x+; older (vendor) kernels only have thread_siblings_list.
        t.write(f"{d}/topology/{'thread_siblings_list' if old_kernel else 'core_cpus_list'}", siblings + "\n")
        if i != 0:
            t.write(f"{d}/online", "1\n" if i in online else "0\n")
        is_online = i in online
        # The kernel adds regs/identification only while a CPU is online (arm64 only).
        if midr and is_online and cpuinfo == "arm64":
            value = garbage_midr.get(i, f"0x{c['midr']:016x}\n")
            t.write(f"{d}/regs/identification/midr_el1", value)
        if cpufreq:
            policy = policies[c["cluster"]]
            policy_online = any(j in online for j in cluster_cpus)
            if policy_online:
                t.write(f"{CPU}/cpufreq/policy{policy}/cpuinfo_max_freq", f"{c['khz']}\n")
                if is_online:
                    t.link(f"{d}/cpufreq", f"../cpufreq/policy{policy}")
    t.write("sys/devices/system/node/node0/cpulist", cpulist(ids) + "\n")
    if cpuinfo:
        t.write("proc/cpuinfo", arm_cpuinfo(cpus, online, cpuinfo))
    return t


def arm_cpuinfo(cpus, online, style):
    out = []
    if style == "arm":
        for i in online:
            m = cpus[i]["midr"]
            out.append(
                f"processor\t: {i}\n"
                f"model name\t: ARMv7 Processor rev {m & 0xf} (v7l)\n"
                "BogoMIPS\t: 48.00\n"
                "Features\t: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt \n"
                f"CPU implementer\t: 0x{(m >> 24) & 0xff:02x}\n"
                "CPU architecture: 7\n"
                f"CPU variant\t: 0x{(m >> 20) & 0xf:x}\n"
                f"CPU part\t: 0x{(m >> 4) & 0xfff:03x}\n"
                f"CPU revision\t: {m & 0xf}\n\n")
        out.append("Hardware\t: Samsung EXYNOS (Flattened Device Tree)\nRevision\t: 0000\n"
                   "Serial\t\t: 0000000000000000\n")
    else:
        for i in online:
            m = cpus[i]["midr"]
            out.append(
                f"processor\t: {i}\n"
                f"BogoMIPS\t: {cpus[i].get('bogomips', '48.00')}\n"
                f"Features\t: {cpus[i].get('features', 'fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid')}\n"
                f"CPU implementer\t: 0x{(m >> 24) & 0xff:02x}\n"
                "CPU architecture: 8\n"
                f"CPU variant\t: 0x{(m >> 20) & 0xf:x}\n"
                f"CPU part\t: 0x{(m >> 4) & 0xfff:03x}\n"
                f"CPU revision\t: {m & 0xf}\n\n")
    return "".join(out)


def cores(n, midr, capacity, khz, cluster, first_core=0, **extra):
    return [dict(midr=midr, capacity=capacity, khz=khz, cluster=cluster, core=first_core + k, **extra)
            for k in range(n)]


# Cortex MIDRs (implementer 0x41, architecture 0xf): r<variant>p<revision>.
A7_R0P3 = 0x410FC073
A15_R2P3 = 0x412FC0F3
A53_R0P4 = 0x410FD034
A55_R2P0 = 0x412FD050
A72_R0P2 = 0x410FD082
A72_R0P3 = 0x410FD083
A73_R0P2 = 0x410FD092
A76_R4P0 = 0x414FD0B0
CARMEL = 0x4E0F0040  # NVIDIA (0x4e), part 0x004

A55_FEATURES = ("fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm "
                "lrcpc dcpop asimddp")


def rk3399(name, **kw):
    # RK3399: 4x A53 (485 DMIPS/MHz, 1416 MHz) + 2x A72 (1024, 1800 MHz): 485*1416/1800 = 381.
    return arm_board(name, cores(4, A53_R0P4, 381, 1416000, 0) + cores(2, A72_R0P2, 1024, 1800000, 1), **kw)


def rk3588(name, **kw):
    # RK3588: 4x A55 (530, 1800 MHz) + 2+2 A76 in two clusters (1024, 2400 MHz): 530*1800/2400 = 397.
    return arm_board(name, cores(4, A55_R2P0, 397, 1800000, 0, features=A55_FEATURES) +
                     cores(2, A76_R4P0, 1024, 2400000, 1, features=A55_FEATURES) +
                     cores(2, A76_R4P0, 1024, 2400000, 2, features=A55_FEATURES), **kw)


def g12b(name, a53_capacity=618, **kw):
    # Amlogic S922X (ODROID-N2): 2x A53 (592, 1992 MHz) + 4x A73 (1024, 1908 MHz):
    # 592*1992/1908 = 618; the little cores clock higher, capacity still ranks them below.
    return arm_board(name, cores(2, A53_R0P4, a53_capacity, 1992000, 0) +
                     cores(4, A73_R0P2, 1024, 1908000, 1), **kw)


def x86_board(name, model_name, family, model, stepping, sockets, cores_per_socket, threads,
              khz_of, hybrid=None, flags_extra=""):
    """Linux numbering: first thread of every core (socket by socket), then the second
    threads. hybrid = (p_cores, e_cores) for one socket: P threads first, then E cores."""
    t = Tree(name)
    cpus = []  # (id, socket, core_id, siblings, kind)
    if hybrid:
        p, e = hybrid
        for c in range(p):
            cpus.append((2 * c, 0, 4 * c, [2 * c, 2 * c + 1], "p"))
            cpus.append((2 * c + 1, 0, 4 * c, [2 * c, 2 * c + 1], "p"))
        for c in range(e):
            cid = 2 * p + c
            cpus.append((cid, 0, 4 * p + c, [cid], "e"))
    else:
        per_thread = sockets * cores_per_socket
        for th in range(threads):
            for s in range(sockets):
                for c in range(cores_per_socket):
                    cid = th * per_thread + s * cores_per_socket + c
                    sib = [k * per_thread + s * cores_per_socket + c for k in range(threads)]
                    cpus.append((cid, s, c, sib, "p"))
    cpus.sort()
    ids = [c[0] for c in cpus]
    t.write(f"{CPU}/possible", cpulist(ids) + "\n")
    t.write(f"{CPU}/online", cpulist(ids) + "\n")
    blocks = []
    flags = ("fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush dts "
             "acpi mmx fxsr sse sse2 ss ht tm pbe syscall nx pdpe1gb rdtscp lm constant_tsc "
             "pni pclmulqdq ssse3 fma cx16 sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c "
             "rdrand lahf_lm abm avx2 bmi1 bmi2 " + flags_extra).strip()
    for cid, sock, core, sib, kind in cpus:
        d = f"{CPU}/cpu{cid}"
        t.write(f"{d}/topology/physical_package_id", f"{sock}\n")
        t.write(f"{d}/topology/core_id", f"{core}\n")
        t.write(f"{d}/topology/cluster_id", f"{sock * 64 + core // 4 * 4 if hybrid else core}\n")
        t.write(f"{d}/topology/core_cpus_list", cpulist(sib) + "\n")
        if cid != 0:
            t.write(f"{d}/online", "1\n")
        # intel_pstate: one policy per CPU, cpuinfo_max_freq is the core's max turbo.
        t.write(f"{CPU}/cpufreq/policy{cid}/cpuinfo_max_freq", f"{khz_of[kind]}\n")
        t.link(f"{d}/cpufreq", f"../cpufreq/policy{cid}")
        siblings = len(ids) // sockets
        blocks.append(
            f"processor\t: {cid}\nvendor_id\t: GenuineIntel\ncpu family\t: {family}\n"
            f"model\t\t: {model}\nmodel name\t: {model_name}\nstepping\t: {stepping}\n"
            f"cpu MHz\t\t: 800.000\nphysical id\t: {sock}\nsiblings\t: {siblings}\n"
            f"core id\t\t: {core}\ncpu cores\t: {len(set((c[1], c[2]) for c in cpus)) // sockets}\n"
            f"flags\t\t: {flags}\n\n")
    t.write("proc/cpuinfo", "".join(blocks))
    for s in range(sockets):
        t.write(f"sys/devices/system/node/node{s}/cpulist",
                cpulist([c[0] for c in cpus if c[1] == s]) + "\n")
    if hybrid:
        t.write("sys/devices/cpu_core/cpus", cpulist([c[0] for c in cpus if c[4] == "p"]) + "\n")
        t.write("sys/devices/cpu_atom/cpus", cpulist([c[0] for c in cpus if c[4] == "e"]) + "\n")
    return t


def be32(*cells):
    return b"".join(struct.pack(">I", c) for c in cells)


def be64(v):
    return struct.pack(">Q", v)


def rk3399_devicetree(t):
    """The /cpus part of rk3399.dtsi (mainline) in the kernel's directory form, with the OPP
    tables of rk3399-opp.dtsi (only their first, a middle and the highest entries)."""
    base = "sys/firmware/devicetree/base"
    t.write(f"{base}/compatible", b"pine64,rockpro64-v2.1\0pine64,rockpro64\0rockchip,rk3399\0")
    t.write(f"{base}/model", b"Pine64 RockPro64 v2.1\0")
    t.write(f"{base}/cpus/#address-cells", be32(2))
    t.write(f"{base}/cpus/#size-cells", be32(0))
    opp_little, opp_big = 0x10, 0x11
    cpu_nodes = [("cpu@0", 0x0), ("cpu@1", 0x1), ("cpu@2", 0x2), ("cpu@3", 0x3),
                 ("cpu@100", 0x100), ("cpu@101", 0x101)]
    for n, (node, reg) in enumerate(cpu_nodes):
        big = reg >= 0x100
        d = f"{base}/cpus/{node}"
        t.write(f"{d}/device_type", b"cpu\0")
        t.write(f"{d}/compatible", b"arm,cortex-a72\0" if big else b"arm,cortex-a53\0")
        t.write(f"{d}/reg", be32(0, reg))
        t.write(f"{d}/enable-method", b"psci\0")
        t.write(f"{d}/capacity-dmips-mhz", be32(1024 if big else 485))
        t.write(f"{d}/operating-points-v2", be32(opp_big if big else opp_little))
        t.write(f"{d}/phandle", be32(0x20 + n))
    clusters = [("cluster0", [0, 1, 2, 3]), ("cluster1", [4, 5])]
    for cname, members in clusters:
        for k, n in enumerate(members):
            t.write(f"{base}/cpus/cpu-map/{cname}/core{k}/cpu", be32(0x20 + n))
    for table, ph, mhzs in (("opp-table-0", opp_little, (408, 1008, 1416)),
                            ("opp-table-1", opp_big, (408, 1416, 1800))):
        t.write(f"{base}/{table}/compatible", b"operating-points-v2\0")
        t.write(f"{base}/{table}/opp-shared", b"")
        t.write(f"{base}/{table}/phandle", be32(ph))
        for k, mhz in enumerate(mhzs):
            t.write(f"{base}/{table}/opp0{k}/opp-hz", be64(mhz * 1000000))
    for i, (node, _) in enumerate(cpu_nodes):
        t.link(f"{CPU}/cpu{i}/of_node", f"../../../../firmware/devicetree/base/cpus/{node}")


def main():
    arm_board("odroid-xu4",
              # Exynos5422 as Hardkernel boots it: the A7 cluster holds cpu0-3.
              # A7 539 DMIPS/MHz at 1400 MHz beside A15 1024 at 2000 MHz: 539*1400/2000 = 377.
              cores(4, A7_R0P3, 377, 1400000, 0) + cores(4, A15_R2P3, 1024, 2000000, 1),
              cpuinfo="arm", old_kernel=True)
    rk3399("rk3399")
    rk3588("rk3588")
    g12b("amlogic-g12b")
    arm_board("tegra194", [dict(midr=CARMEL, capacity=1024, khz=2265600, cluster=k // 2, core=k % 2,
                                bogomips="62.50") for k in range(8)])
    arm_board("rpi4", cores(4, A72_R0P3, 1024, 1500000, 0, bogomips="108.00"))
    x86_board("intel-hybrid", "13th Gen Intel(R) Core(TM) i5-13600K", 6, 183, 1, 1, 0, 0,
              {"p": 5100000, "e": 3900000}, hybrid=(6, 8))
    x86_board("x86-server", "Intel(R) Xeon(R) Silver 4208 CPU @ 2.10GHz", 6, 85, 7, 2, 8, 2,
              {"p": 3200000}, flags_extra="avx512f avx512dq avx512cd avx512bw avx512vl")
    # Degenerate trees.
    rk3399("no-capacity", capacity=False)  # an older kernel without cpu_capacity
    rk3588("cpus-offline", online=[0, 1, 2, 3, 4, 5])  # cluster2 (cpu6-7) hot-unplugged
    # No cpufreq driver: the kernel scales capacities by the boot clock, equal on both
    # clusters here, so they are the bare dmips values.
    g12b("no-cpufreq", a53_capacity=592, cpufreq=False)
    rk3399("garbage-midr", garbage_midr={0: "garbage\n", 4: "0x0000000000000000\n", 5: "\xff\xfe\n"})
    # sysfs without capacities, cpufreq, MIDR or cpuinfo: everything from the devicetree.
    t = rk3399("devicetree-fallback", capacity=False, cpufreq=False, midr=False, cpuinfo=None)
    rk3399_devicetree(t)


if __name__ == "__main__":
    main()
