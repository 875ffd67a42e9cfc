#!/usr/bin/env python3
"""Names the image in an OCI archive for every importer: sets both the OCI reference name and
containerd's own annotation (io.containerd.image.name, which `ctr images import` reads first) on
each manifest of the archive's index.json.

    oci-name.py ARCHIVE NAME      e.g. build/image/edgefd_0.1.0_amd64.oci.tar docker.io/edgefd/edgefd:0.1.0
"""
import io
import json
import os
import sys
import tarfile


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    path, name = sys.argv[1], sys.argv[2]
    tmp = path + ".tmp"
    with tarfile.open(path) as src, tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as dst:
        found = False
        for member in src:
            data = src.extractfile(member) if member.isfile() else None
            if member.name.lstrip("./") == "index.json":
                index = json.load(data)
                for m in index.get("manifests", []):
                    m.setdefault("annotations", {})
                    m["annotations"]["org.opencontainers.image.ref.name"] = name
                    m["annotations"]["io.containerd.image.name"] = name
                raw = json.dumps(index).encode()
                member.size = len(raw)
                data = io.BytesIO(raw)
                found = True
            dst.addfile(member, data)
    if not found:
        os.unlink(tmp)
        print(f"oci-name.py: {path}: no index.json (not an OCI archive)", file=sys.stderr)
        return 1
    os.replace(tmp, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
