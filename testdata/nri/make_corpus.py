#!/usr/bin/env python3
"""Writes the seed inputs of fuzz/nri_frame_fuzz.cc into corpus/: what a runtime sends
edgefd-nri (mux frames of ttrpc requests of NRI messages), encoded here by hand from the
.proto field numbers so the seeds do not depend on the code they test. Each file's first byte
picks the chunk size the harness feeds. Run it again after changing it; the files are kept in
git."""
import os
import struct

def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])

def field(num, value):
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    if isinstance(value, str):
        value = value.encode()
    return varint((num << 3) | 2) + varint(len(value)) + value

def container(cid, env, cpus="", state=3):
    linux = field(3, field(2, field(6, cpus)))  # LinuxContainer.resources.cpu.cpus
    return (field(1, cid) + field(2, "pod") + field(3, cid) + field(4, state) +
            b"".join(field(8, e) for e in env) + field(11, linux))

POD = field(1, "pod") + field(2, "web") + field(4, "default")

def request(method, payload, stream=1):
    req = field(1, "nri.pkg.api.v1alpha1.Plugin") + field(2, method) + field(3, payload)
    ttrpc = struct.pack(">IIBB", len(req), stream, 1, 0) + req
    return ttrpc

def mux(conn, data):
    return struct.pack(">II", conn, len(data)) + data

seeds = {
    "configure": mux(1, request("Configure", field(2, "containerd") + field(3, "2.1.0"))),
    "synchronize": mux(1, request("Synchronize", field(1, POD) +
                                  field(2, container("a", ["EDGEFD_BIG_CPUS=1"])) +
                                  field(2, container("b", ["PATH=/bin"], "0-3")), 3)),
    "create": mux(1, request("CreateContainer", field(1, POD) +
                             field(2, container("c", ["EDGEFD_LITTLE_CPUS=0,7"], state=1)), 5)),
    "remove-event": mux(1, request("StateChange", field(1, 11) + field(2, POD) +
                                   field(3, container("a", [])), 7)),
    "response": mux(2, struct.pack(">IIBB", 2, 1, 2, 0) + field(1, b"")),
    "oversize": struct.pack(">II", 1, 0xFFFFFFF0),
    "reserved-conn": mux(0, b"x"),
}
# One request split over two mux frames, as NRI's mux may deliver it.
whole = request("StopContainer", field(1, POD) + field(2, container("a", [])), 9)
seeds["split"] = mux(1, whole[:7]) + mux(1, whole[7:])

here = os.path.dirname(os.path.abspath(__file__))
for i, (name, data) in enumerate(sorted(seeds.items())):
    with open(os.path.join(here, "corpus", name + ".bin"), "wb") as f:
        f.write(bytes([i * 13 % 256]) + data)
