#!/usr/bin/env python3
"""The defaults the docs' flag tables state are the defaults the programs' --help states.

    docs_defaults_test.py REPO BUILD

docs/deviceplugin.md and docs/nri.md have tables `| --flag | default | meaning |`;
docs/deploy.md (the labeller agent) says "(default X" in its meaning column. Every flag whose
--help names a default must have the same one in the docs, and every documented flag must
exist. docs/pipeline.md's --policy sentence is checked against the three commands' --help.
"""

import re
import subprocess
import sys


def help_defaults(argv):
    """{flag: default or None} from a --help text."""
    text = subprocess.run(argv + ["--help"], check=True, capture_output=True, text=True).stdout
    out = {}
    current = None
    for line in text.splitlines():
        m = re.match(r"\s{2}(--[a-z0-9-]+)", line)
        if m:
            current = m.group(1)
            out[current] = line
        elif current and line.startswith("   "):
            out[current] += " " + line.strip()
        else:
            current = None
    defaults = {}
    for flag, block in out.items():
        block = re.sub(r"\s+", " ", block)
        m = re.search(r"\(default: ([^;)]*)", block)
        defaults[flag] = m.group(1).strip() if m else None
    return defaults


def table_defaults(path):
    """{flag: default} from `| `--flag ...` | default | meaning |` rows."""
    out = {}
    for line in open(path, encoding="utf-8"):
        # "\|" inside a cell (`--policy exclusive\|shared`) is no column separator.
        cells = [c.strip().replace("\0", "|") for c in
                 line.strip().replace("\\|", "\0").strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`--"):
            continue
        flag = re.match(r"`(--[a-z0-9-]+)", cells[0]).group(1)
        value = cells[1].strip("`")
        if value and " " not in value:
            out[flag] = value
    return out


def prose_defaults(path):
    """{flag: default} from `| `--flag ...` | ... (default X; ...) |` rows."""
    out = {}
    for line in open(path, encoding="utf-8"):
        m = re.match(r"\| `(--[a-z0-9-]+)[^|]*\|(.*)\|", line)
        if not m:
            continue
        d = re.search(r"\(default ([^;)]+)", m.group(2)) or re.search(
            r"^\s*default `([^`]+)`", m.group(2))
        if d:
            out[m.group(1)] = d.group(1).replace("`", "").strip()
    return out


def compare(name, documented, helped, failures):
    for flag, value in documented.items():
        if flag not in helped:
            failures.append(f"{name}: the docs document {flag}, which --help does not list")
            continue
        if helped[flag] is not None and helped[flag] != value:
            failures.append(f"{name}: {flag}: docs say default {value!r}, --help says {helped[flag]!r}")


def main():
    repo, build = sys.argv[1], sys.argv[2]
    failures = []
    checked = 0
    for doc, argv, parse in [
        ("docs/deviceplugin.md", [f"{build}/deviceplugin/edgefd-deviceplugin"], table_defaults),
        ("docs/nri.md", [f"{build}/deviceplugin/nri/edgefd-nri"], table_defaults),
        ("docs/deploy.md", [f"{build}/labeller/edgefd-labeller"], prose_defaults),
    ]:
        documented = parse(f"{repo}/{doc}")
        compare(doc, documented, help_defaults(argv), failures)
        checked += len(documented)
    pipeline = f"{build}/runtime/edgefd-pipeline"
    policy = {cmd: help_defaults([pipeline, cmd]).get("--policy") for cmd in ("run", "stage", "sink")}
    text = re.sub(r"\s+", " ", open(f"{repo}/docs/pipeline.md", encoding="utf-8").read())
    if not (policy["stage"] == policy["sink"] == "latest" and policy["run"].startswith("block")):
        failures.append(f"edgefd-pipeline --policy defaults changed: {policy}")
    if "`latest` (the default of `stage` and `sink`; `run` defaults to `block`" not in text:
        failures.append("docs/pipeline.md no longer states the --policy defaults of run, stage, sink")
    if checked < 15:
        failures.append(f"only {checked} documented defaults found: has a table's format changed?")
    for f in failures:
        print(f)
    print(f"{checked} documented defaults checked")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
