#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) into ./build-fuzz and runs each for
# SECONDS (default 60), seeded with the project's fixtures and, when present, ../shared's
# real devicetrees. Exits non-zero on the first finding (the crashing input is saved in
# build-fuzz/findings/).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DEDGEFD_BUILD_FUZZ=ON -DEDGEFD_BUILD_TESTS=OFF -DEDGEFD_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target dtb_parser_fuzz label_sanitize_fuzz rules_parser_fuzz \
  claim_parser_fuzz nri_frame_fuzz

corpus=build-fuzz/corpus
mkdir -p "$corpus/dtb" "$corpus/labels" "$corpus/rules" "$corpus/claims" "$corpus/nri" build-fuzz/findings
# What a container runtime sends edgefd-nri (testdata/nri/make_corpus.py writes them).
cp testdata/nri/corpus/*.bin "$corpus/nri/"
for dts in testdata/dt/*.dts; do
  dtc -q -I dts -O dtb -o "$corpus/dtb/$(basename "$dts" .dts).dtb" "$dts"
done
if [ -d ../shared/devicetrees ]; then cp ../shared/devicetrees/*.dtb "$corpus/dtb/"; fi
printf 'nvidia,tegra210-gm20b' > "$corpus/labels/compat"
sed -n '/R"(rules:/,/^)";/p' discovery/src/rules_default.cc | sed '1s/.*R"(//;$d' > "$corpus/rules/default.yaml"
printf 'NVIDIA Jetson Nano \xff\xfe (rev 2)' > "$corpus/labels/model"
# A ResourceClaim as the API server answers it: two big cores and a stick, with configuration.
cat > "$corpus/claims/allocated.json" <<'JSON'
{"apiVersion":"resource.k8s.io/v1","kind":"ResourceClaim","metadata":{"name":"c","namespace":"default","uid":"6f0e3c1a-2b4d","resourceVersion":"42"},"spec":{"devices":{"requests":[{"name":"cores","exactly":{"deviceClassName":"edgefd.io-big-cpu","count":2}}]}},"status":{"allocation":{"devices":{"results":[{"request":"cores","driver":"edgefd.io","pool":"rock5b","device":"cpu4"},{"request":"cores","driver":"edgefd.io","pool":"rock5b","device":"cpu5"},{"request":"tpu/usb","driver":"edgefd.io","pool":"rock5b","device":"edgetpu-2-1"}],"config":[{"source":"FromClaim","requests":["cores"],"opaque":{"driver":"other.example.com","parameters":{}}}]}}}}
JSON
printf '{"metadata":{"name":"c","uid":"u"}}' > "$corpus/claims/unallocated.json"

for target in dtb_parser_fuzz:dtb label_sanitize_fuzz:labels rules_parser_fuzz:rules \
  claim_parser_fuzz:claims nri_frame_fuzz:nri; do
  bin=${target%%:*}
  dir=${target##*:}
  echo "== $bin for ${seconds}s"
  "./build-fuzz/fuzz/$bin" -max_total_time="$seconds" -max_len=262144 -print_final_stats=1 \
    -artifact_prefix=build-fuzz/findings/ "$corpus/$dir" 2>&1 | grep -E '^(#[0-9]+ +DONE|stat::|==|INFO: Seed)' || true
  test "${PIPESTATUS[0]}" -eq 0
done
