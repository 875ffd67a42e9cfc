#!/usr/bin/env python3
"""Writes a flattened devicetree blob out as the kernel's directory form
(/sys/firmware/devicetree/base: a directory per node, a file per property, plus the `name`
file older kernels synthesise). Used to make test fixtures; needs only the standard library.

usage: dtb2dir.py BLOB.dtb OUTDIR
"""
import os
import struct
import sys

FDT_BEGIN_NODE, FDT_END_NODE, FDT_PROP, FDT_NOP, FDT_END = 1, 2, 3, 4, 9


def main(blob_path, out_dir):
    data = open(blob_path, "rb").read()
    magic, _total, off_struct, off_strings = struct.unpack(">IIII", data[:16])
    if magic != 0xD00DFEED:
        sys.exit(f"{blob_path}: not a flattened devicetree")
    pos, stack = off_struct, []
    while True:
        (tag,) = struct.unpack(">I", data[pos:pos + 4])
        pos += 4
        if tag == FDT_BEGIN_NODE:
            end = data.index(b"\0", pos)
            name = data[pos:end].decode()
            pos = (end + 4) & ~3
            path = os.path.join(stack[-1], name) if stack else out_dir
            os.makedirs(path, exist_ok=True)
            if stack:
                with open(os.path.join(path, "name"), "wb") as f:
                    f.write(name.split("@")[0].encode() + b"\0")
            stack.append(path)
        elif tag == FDT_END_NODE:
            stack.pop()
        elif tag == FDT_PROP:
            length, nameoff = struct.unpack(">II", data[pos:pos + 8])
            pos += 8
            value = data[pos:pos + length]
            pos = (pos + length + 3) & ~3
            pname = data[off_strings + nameoff:data.index(b"\0", off_strings + nameoff)].decode()
            with open(os.path.join(stack[-1], pname), "wb") as f:
                f.write(value)
        elif tag == FDT_NOP:
            continue
        elif tag == FDT_END:
            break
        else:
            sys.exit(f"{blob_path}: bad tag {tag} at {pos - 4}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
