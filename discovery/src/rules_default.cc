#include "edgefd/discovery/rules.h"

namespace edgefd {

// The built-in rules, in the format users write (docs/accelerators.md). Kept as YAML so
// `--config` files and the defaults go through the same parser and checks.
std::string_view DefaultRulesYaml() {
  return R"(rules:
  # Intel Movidius Neural Compute Stick (2150) and NCS2 (2485, f63b after firmware load).
  - name: movidius-ncs
    match:
      - usb: ["03e7:2150", "03e7:2485", "03e7:f63b"]
  # Google Coral: USB accelerator before (1a6e:089a) and after (18d1:9302) its firmware
  # loads, and the PCIe/M.2 module driven by gasket/apex.
  - name: edgetpu
    match:
      - usb: ["1a6e:089a", "18d1:9302"]
      - pci: ["1ac1:089a"]
      - subsystem: apex
    devnodes: ["/dev/apex_*", "/dev/bus/usb/*/*"]
  # Hailo-8 / Hailo-8L PCIe.
  - name: hailo
    match:
      - pci: ["1e60:2864", "1e60:45c4"]
      - subsystem: hailo_chardev
    devnodes: ["/dev/hailo*"]
  # NVIDIA discrete GPUs: vendor 10de, display controller class (03xx). The proprietary
  # driver's /dev/nvidia* nodes are not udev devices, so nodes are not required. Its version
  # is in /proc/driver/nvidia/version ("... Kernel Module  535.104.05  ...").
  - name: nvidia-gpu
    match:
      - pci: ["10de"]
        pci-class: ["03"]
    devnodes: ["/dev/dri/card*", "/dev/dri/renderD*"]
    require-devnodes: false
    versions:
      driver:
        - file: /proc/driver/nvidia/version
          regex: 'Kernel Module +([0-9][0-9.]*)'
        - bound-driver: true
  # Jetson integrated GPUs (Tegra X1 gm20b, X2 gp10b, Xavier gv11b, Orin ga10b).
  - name: jetson-gpu
    match:
      - compatible: ["nvidia,gm20b", "nvidia,gp10b", "nvidia,gv11b", "nvidia,ga10b",
                     "nvidia,tegra*-gm20b", "nvidia,tegra*-gp10b", "nvidia,tegra*-gv11b",
                     "nvidia,tegra*-ga10b"]
    devnodes: ["/dev/nvhost-*", "/dev/nvmap", "/dev/dri/card*", "/dev/dri/renderD*"]
    # L4T's release file: "# R32 (release), REVISION: 7.1, GCID: ..." is 32.7.1.
    versions:
      driver:
        - module: nvgpu
      runtime:
        - file: /etc/nv_tegra_release
          regex: '^# R([0-9]+) \(release\), REVISION: ([0-9]+)\.([0-9]+)'
  # Arm Mali GPUs (Utgard, Midgard, Bifrost, Valhall).
  - name: mali-gpu
    match:
      - compatible: ["arm,mali-*"]
    devnodes: ["/dev/mali*", "/dev/dri/card*", "/dev/dri/renderD*"]
    versions:
      driver: [{module: mali_kbase}, {module: panfrost}, {module: lima}, {module: panthor}]
  # Broadcom V3D GPUs of the Raspberry Pi 4 (BCM2711) and 5 (BCM2712): DRM driver v3d.
  - name: v3d-gpu
    match:
      - compatible: ["brcm,2711-v3d", "brcm,2712-v3d"]
    devnodes: ["/dev/dri/renderD*"]
    versions:
      driver: [{module: v3d}]
  # Arm Ethos-U NPUs (i.MX 93's Ethos-U65): NXP's ethosu driver or the mainline accel one.
  - name: ethos-u-npu
    match:
      - compatible: ["arm,ethos-u*"]
    devnodes: ["/dev/ethosu*", "/dev/accel/accel*"]
    versions:
      driver: [{module: ethosu}, {module: ethos_u}]
  # Vivante GC GPUs (i.MX 8M's GC7000L) under a `gpu` node: etnaviv or NXP's galcore.
  - name: vivante-gpu
    match:
      - compatible: ["vivante,gc"]
        dt-node: ["gpu"]
    devnodes: ["/dev/galcore", "/dev/dri/renderD*"]
    versions:
      driver: [{module: galcore}, {module: etnaviv}]
  # Rockchip NPUs (RK3588 rknn cores, RK356x rknpu; vendor rknpu or mainline rocket driver).
  - name: rknpu
    match:
      - compatible: ["rockchip,*rknn*", "rockchip,*rknpu*"]
    devnodes: ["/dev/rknpu*", "/dev/accel/accel*", "/dev/dri/renderD*"]
  # VeriSilicon/Vivante GC NPUs (Amlogic A311D, i.MX 8M Plus) under an `npu` node; the same
  # compatible under a `gpu` node is a GPU and does not count.
  - name: vivante-npu
    match:
      - compatible: ["vivante,gc"]
        dt-node: ["npu"]
    devnodes: ["/dev/galcore", "/dev/accel/accel*", "/dev/dri/renderD*"]
  # V4L2 capture devices. A camera's metadata and extra nodes share its USB/PCI/devicetree
  # parent, so it counts once.
  - name: camera
    kind: camera
    resource: false
    match:
      - subsystem: video4linux
        property: {ID_V4L_CAPABILITIES: "*:capture:*"}
    devnodes: ["/dev/video*", "/dev/media*"]
)";
}

}  // namespace edgefd
