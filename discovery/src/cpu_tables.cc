// Core identity tables: facts about CPU cores, kept as data.
//
// MIDR implementer/part numbers are those the cores' technical reference manuals give (and
// Linux lists in arch/arm64/include/asm/cputype.h). `perf` is a rough integer performance per
// MHz (about DMIPS/MHz × 100) used only to order classes when the kernel reports no
// capacities; it never becomes a label.

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <string>

#include "edgefd/discovery/cpu.h"
#include "edgefd/discovery/labels.h"

namespace edgefd {
namespace {

struct CoreInfo {
  uint32_t implementer;
  uint32_t part;
  const char* model;
  const char* arch;
  int perf;
};

constexpr std::array kCores = std::to_array<CoreInfo>({
    // Arm Ltd (0x41): 32-bit ARMv7 cores.
    {0x41, 0xb76, "arm1176", "arm", 125},
    {0x41, 0xc05, "cortex-a5", "arm", 160},
    {0x41, 0xc07, "cortex-a7", "arm", 190},
    {0x41, 0xc08, "cortex-a8", "arm", 200},
    {0x41, 0xc09, "cortex-a9", "arm", 250},
    {0x41, 0xc0d, "cortex-a12", "arm", 300},
    {0x41, 0xc0e, "cortex-a17", "arm", 330},
    {0x41, 0xc0f, "cortex-a15", "arm", 350},
    // Arm Ltd: ARMv8 and later.
    {0x41, 0xd01, "cortex-a32", "arm64", 230},
    {0x41, 0xd02, "cortex-a34", "arm64", 230},
    {0x41, 0xd03, "cortex-a53", "arm64", 230},
    {0x41, 0xd04, "cortex-a35", "arm64", 200},
    {0x41, 0xd05, "cortex-a55", "arm64", 270},
    {0x41, 0xd06, "cortex-a65", "arm64", 300},
    {0x41, 0xd07, "cortex-a57", "arm64", 410},
    {0x41, 0xd08, "cortex-a72", "arm64", 470},
    {0x41, 0xd09, "cortex-a73", "arm64", 480},
    {0x41, 0xd0a, "cortex-a75", "arm64", 560},
    {0x41, 0xd0b, "cortex-a76", "arm64", 700},
    {0x41, 0xd0c, "neoverse-n1", "arm64", 700},
    {0x41, 0xd0d, "cortex-a77", "arm64", 800},
    {0x41, 0xd0e, "cortex-a76ae", "arm64", 700},
    {0x41, 0xd40, "neoverse-v1", "arm64", 1000},
    {0x41, 0xd41, "cortex-a78", "arm64", 900},
    {0x41, 0xd42, "cortex-a78ae", "arm64", 900},
    {0x41, 0xd43, "cortex-a65ae", "arm64", 300},
    {0x41, 0xd44, "cortex-x1", "arm64", 1000},
    {0x41, 0xd46, "cortex-a510", "arm64", 300},
    {0x41, 0xd47, "cortex-a710", "arm64", 950},
    {0x41, 0xd48, "cortex-x2", "arm64", 1150},
    {0x41, 0xd49, "neoverse-n2", "arm64", 950},
    {0x41, 0xd4a, "neoverse-e1", "arm64", 300},
    {0x41, 0xd4b, "cortex-a78c", "arm64", 900},
    {0x41, 0xd4c, "cortex-x1c", "arm64", 1000},
    {0x41, 0xd4d, "cortex-a715", "arm64", 1000},
    {0x41, 0xd4e, "cortex-x3", "arm64", 1300},
    {0x41, 0xd4f, "neoverse-v2", "arm64", 1300},
    {0x41, 0xd80, "cortex-a520", "arm64", 320},
    {0x41, 0xd81, "cortex-a720", "arm64", 1100},
    {0x41, 0xd82, "cortex-x4", "arm64", 1500},
    {0x41, 0xd84, "neoverse-v3", "arm64", 1500},
    {0x41, 0xd85, "cortex-x925", "arm64", 1700},
    {0x41, 0xd87, "cortex-a725", "arm64", 1200},
    {0x41, 0xd8e, "neoverse-n3", "arm64", 1100},
    // Broadcom (0x42).
    {0x42, 0x00f, "brahma-b15", "arm", 350},
    {0x42, 0x100, "brahma-b53", "arm64", 230},
    {0x42, 0x516, "vulcan", "arm64", 600},
    // Cavium (0x43).
    {0x43, 0x0a1, "thunderx", "arm64", 300},
    {0x43, 0x0af, "thunderx2", "arm64", 600},
    // Fujitsu (0x46).
    {0x46, 0x001, "a64fx", "arm64", 600},
    // HiSilicon (0x48).
    {0x48, 0xd01, "tsv110", "arm64", 700},
    // NVIDIA (0x4e).
    {0x4e, 0x000, "denver", "arm64", 500},
    {0x4e, 0x003, "denver2", "arm64", 550},
    {0x4e, 0x004, "carmel", "arm64", 600},
    // Qualcomm (0x51).
    {0x51, 0x00f, "scorpion", "arm", 210},
    {0x51, 0x02d, "scorpion", "arm", 210},
    {0x51, 0x04d, "krait", "arm", 330},
    {0x51, 0x06f, "krait", "arm", 330},
    {0x51, 0x200, "kryo", "arm64", 500},
    {0x51, 0x201, "kryo", "arm64", 500},
    {0x51, 0x205, "kryo", "arm64", 500},
    {0x51, 0x211, "kryo", "arm64", 500},
    {0x51, 0x800, "kryo-2xx-gold", "arm64", 480},
    {0x51, 0x801, "kryo-2xx-silver", "arm64", 230},
    {0x51, 0x802, "kryo-3xx-gold", "arm64", 560},
    {0x51, 0x803, "kryo-3xx-silver", "arm64", 270},
    {0x51, 0x804, "kryo-4xx-gold", "arm64", 700},
    {0x51, 0x805, "kryo-4xx-silver", "arm64", 270},
    {0x51, 0xc00, "falkor", "arm64", 600},
    {0x51, 0xc01, "saphira", "arm64", 600},
    {0x51, 0x001, "oryon", "arm64", 1500},
    // Apple (0x61).
    {0x61, 0x022, "icestorm", "arm64", 400},
    {0x61, 0x023, "firestorm", "arm64", 1400},
    {0x61, 0x024, "icestorm-pro", "arm64", 400},
    {0x61, 0x025, "firestorm-pro", "arm64", 1400},
    {0x61, 0x028, "icestorm-max", "arm64", 400},
    {0x61, 0x029, "firestorm-max", "arm64", 1400},
    {0x61, 0x032, "blizzard", "arm64", 450},
    {0x61, 0x033, "avalanche", "arm64", 1500},
    {0x61, 0x034, "blizzard-pro", "arm64", 450},
    {0x61, 0x035, "avalanche-pro", "arm64", 1500},
    {0x61, 0x038, "blizzard-max", "arm64", 450},
    {0x61, 0x039, "avalanche-max", "arm64", 1500},
    // Ampere (0xc0).
    {0xc0, 0xac3, "ampere-1", "arm64", 900},
    {0xc0, 0xac4, "ampere-1a", "arm64", 950},
});

// Devicetree compatibles whose model part is not the name the MIDR table uses.
struct CompatibleAlias {
  const char* compatible;
  const char* model;
};
constexpr std::array kCompatibleAliases = std::to_array<CompatibleAlias>({
    {"nvidia,tegra132-denver", "denver"},
    {"nvidia,tegra186-denver", "denver2"},
    {"nvidia,tegra194-carmel", "carmel"},
    {"arm,arm1176jzf-s", "arm1176"},
    {"qcom,kryo", "kryo"},
    {"qcom,kryo260", "kryo-2xx-gold"},
    {"apple,icestorm", "icestorm"},
    {"apple,firestorm", "firestorm"},
    {"apple,blizzard", "blizzard"},
    {"apple,avalanche", "avalanche"},
});

// Cores without an ARM MIDR: RISC-V (devicetree compatibles) and Intel hybrid core types.
struct OtherCore {
  const char* model;
  const char* arch;
  int perf;
};
constexpr std::array kOtherCores = std::to_array<OtherCore>({
    {"u54-mc", "riscv64", 170},
    {"u74-mc", "riscv64", 260},
    {"c906", "riscv64", 180},
    {"c910", "riscv64", 400},
    {"c920", "riscv64", 400},
    {"x60", "riscv64", 330},
    {"sunny-cove", "amd64", 800},
    {"golden-cove", "amd64", 1000},
    {"raptor-cove", "amd64", 1050},
    {"redwood-cove", "amd64", 1050},
    {"lion-cove", "amd64", 1200},
    {"intel-p-core", "amd64", 1000},
    {"tremont", "amd64", 450},
    {"gracemont", "amd64", 600},
    {"crestmont", "amd64", 650},
    {"skymont", "amd64", 850},
    {"intel-e-core", "amd64", 600},
});

struct IntelHybrid {
  int model;
  const char* p_core;
  const char* e_core;
};
// Family 6 hybrid parts (Intel's model numbers; Linux's arch/x86/include/asm/intel-family.h).
constexpr std::array kIntelHybrid = std::to_array<IntelHybrid>({
    {0x8a, "sunny-cove", "tremont"},      // Lakefield
    {0x97, "golden-cove", "gracemont"},   // Alder Lake-S
    {0x9a, "golden-cove", "gracemont"},   // Alder Lake-P
    {0xb7, "raptor-cove", "gracemont"},   // Raptor Lake-S
    {0xba, "raptor-cove", "gracemont"},   // Raptor Lake-P
    {0xbf, "raptor-cove", "gracemont"},   // Raptor Lake-S (B0)
    {0xaa, "redwood-cove", "crestmont"},  // Meteor Lake
    {0xac, "redwood-cove", "crestmont"},  // Meteor Lake
    {0xb5, "redwood-cove", "crestmont"},  // Arrow Lake-U
    {0xbd, "lion-cove", "skymont"},       // Lunar Lake
    {0xc5, "lion-cove", "skymont"},       // Arrow Lake-H
    {0xc6, "lion-cove", "skymont"},       // Arrow Lake-S
});

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

std::string ArmCoreModel(uint32_t implementer, uint32_t part) {
  for (const CoreInfo& c : kCores) {
    if (c.implementer == implementer && c.part == part) return c.model;
  }
  char buf[32];
  if (implementer == 0x41) {
    std::snprintf(buf, sizeof buf, "arm-0x%03x", part);
  } else {
    std::snprintf(buf, sizeof buf, "impl-0x%02x-0x%03x", implementer, part);
  }
  return buf;
}

std::string CompatibleCoreModel(std::string_view compatible) {
  std::string lower = Lower(compatible);
  for (const CompatibleAlias& a : kCompatibleAliases) {
    if (lower == a.compatible) return a.model;
  }
  std::string_view model = lower;
  if (size_t comma = model.find(','); comma != std::string_view::npos) {
    model = model.substr(comma + 1);
  }
  return SanitizeLabelValue(model);
}

int CorePerfPerMhz(std::string_view model) {
  for (const CoreInfo& c : kCores) {
    if (model == c.model) return c.perf;
  }
  for (const OtherCore& c : kOtherCores) {
    if (model == c.model) return c.perf;
  }
  return 0;
}

std::string CoreArch(std::string_view model) {
  for (const CoreInfo& c : kCores) {
    if (model == c.model) return c.arch;
  }
  for (const OtherCore& c : kOtherCores) {
    if (model == c.model) return c.arch;
  }
  return "";
}

std::optional<std::pair<std::string, std::string>> IntelHybridCoreNames(int family, int model) {
  if (family != 6) return std::nullopt;
  for (const IntelHybrid& h : kIntelHybrid) {
    if (h.model == model) return std::make_pair(std::string(h.p_core), std::string(h.e_core));
  }
  return std::nullopt;
}

std::string X86ModelName(std::string_view model_name) {
  std::string s = Lower(model_name);
  // Everything after '@' is the base clock, not the model.
  if (size_t at = s.find('@'); at != std::string::npos) s.resize(at);
  for (const char* noise : {"(r)", "(tm)"}) {
    for (size_t p; (p = s.find(noise)) != std::string::npos;)
      s.erase(p, std::string_view(noise).size());
  }
  // Split into words and drop filler ("CPU", "Processor", "13th Gen", "64-Core").
  std::vector<std::string> words;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    size_t j = i;
    while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j]))) ++j;
    if (j > i) words.push_back(s.substr(i, j - i));
    i = j;
  }
  std::string joined;
  for (size_t k = 0; k < words.size(); ++k) {
    const std::string& w = words[k];
    bool ordinal =
        w.size() > 2 && std::isdigit(static_cast<unsigned char>(w[0])) &&
        (w.ends_with("th") || w.ends_with("st") || w.ends_with("nd") || w.ends_with("rd"));
    if (ordinal && k + 1 < words.size() && words[k + 1] == "gen") {
      ++k;
      continue;
    }
    if (w == "cpu" || w == "processor" || w.ends_with("-core")) continue;
    if (!joined.empty()) joined += '-';
    joined += w;
  }
  return SanitizeLabelValue(joined);
}

std::string NormalizeArch(std::string_view machine) {
  if (machine == "x86_64" || machine == "amd64") return "amd64";
  if (machine == "aarch64" || machine == "arm64" || machine == "aarch64_be") return "arm64";
  if (machine.starts_with("armv") || machine == "arm") return "arm";
  if (machine == "riscv64") return "riscv64";
  if (machine == "i386" || machine == "i486" || machine == "i586" || machine == "i686")
    return "386";
  return SanitizeLabelValue(machine);
}

}  // namespace edgefd
