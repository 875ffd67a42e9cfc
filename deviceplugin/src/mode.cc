#include "edgefd/deviceplugin/mode.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>

#include "edgefd/common/program.h"

namespace edgefd::deviceplugin {

std::optional<int> HandOverMode(int argc, char** argv) {
  std::optional<std::string> mode;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--") break;
    if (arg == "--mode") {
      if (i + 1 >= argc) {
        std::cerr << "edgefd-deviceplugin: --mode needs a value (see --help)\n";
        return kExitUsage;
      }
      mode = argv[++i];
    } else if (arg.starts_with("--mode=")) {
      mode = std::string(arg.substr(7));
    }
  }
  if (!mode || *mode == "device-plugin") return std::nullopt;
  if (*mode != "dra" && *mode != "both") {
    std::cerr << "edgefd-deviceplugin: --mode '" << *mode
              << "': expected device-plugin, dra or both\n";
    return kExitUsage;
  }
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  std::filesystem::path program = self.parent_path() / kDraProgram;
  if (ec || ::access(program.c_str(), X_OK) != 0) {
    std::cerr << "edgefd-deviceplugin: --mode " << *mode << " needs " << program.string()
              << " (installed next to edgefd-deviceplugin), which is missing\n";
    return kExitFailure;
  }
  ::execv(program.c_str(), argv);
  std::cerr << "edgefd-deviceplugin: cannot run " << program.string() << ": "
            << std::strerror(errno) << "\n";
  return kExitFailure;
}

}  // namespace edgefd::deviceplugin
