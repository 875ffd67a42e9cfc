#include "edgefd/discovery/flags.h"

#include <cmath>
#include <cstdlib>

#include "edgefd/discovery/labels.h"

namespace edgefd {

void AddDiscoveryFlags(CLI::App& app, DiscoveryFlags& flags) {
  DiscoveryOptions& d = flags.discovery;
  const std::string group = "Discovery";
  app.add_option("--root", d.root,
                 "read sysfs/procfs below DIR instead of / (the DaemonSets use /host, with the "
                 "host's /sys at /host/sys)")
      ->type_name("DIR")
      ->group(group);
  app.add_option_function<std::string>(
         "--dtb", [&d](const std::string& file) { d.dtb = file; },
         "read the devicetree from this .dtb instead of the live tree "
         "(ROOT/sys/firmware/devicetree/base, else ROOT/sys/firmware/fdt)")
      ->type_name("FILE")
      ->group(group);
  app.add_option("--node", d.extra_node_names,
                 "also label compatibles of enabled devicetree nodes named NAME (repeatable; "
                 "cpu, gpu and npu always are)")
      ->type_name("NAME")
      ->check(CLI::Validator(
          [](std::string& name) -> std::string {
            if (!name.empty() && SanitizeLabelName(name) == name) return {};
            return "'" + name + "' is not a devicetree node name";
          },
          ""))
      ->group(group);
  app.add_option("--config", d.rule_files,
                 "accelerator/camera rules (YAML) over the built-in ones (repeatable; later "
                 "files override earlier rules by name)")
      ->type_name("FILE")
      ->group(group);
  app.add_flag_function(
         "--udev", [&d](int64_t) { d.udev = true; },
         "enumerate accelerators and cameras with libudev (default: on when --root is / and "
         "there is no --dtb; libudev reads this process's /sys and /run/udev)")
      ->group(group);
  app.add_flag_function(
         "--no-udev", [&d](int64_t) { d.udev = false; }, "do not enumerate with libudev")
      ->group(group);
  app.add_option_function<std::string>(
         "--rescan",
         [&flags](const std::string& text) {
           const double seconds = std::strtod(text.c_str(), nullptr);  // checked below
           flags.rescan =
               seconds <= 0
                   ? std::chrono::milliseconds(0)
                   : std::chrono::milliseconds(std::max<int64_t>(1, std::llround(seconds * 1000)));
         },
         "when the udev netlink monitor cannot be opened, rescan every SECONDS instead "
         "(default: 30; 0: never)")
      ->type_name("SECONDS")
      ->check(SecondsIn(0, 86400))
      ->group(group);
}

}  // namespace edgefd
