#include "edgefd/deviceplugin/mode.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "edgefd/common/memory.h"
#include "edgefd/common/program.h"

namespace edgefd::deviceplugin {

std::string ModeInArgs(int argc, char** argv) {
  std::string mode;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--") break;
    if (arg == "--mode" && i + 1 < argc) {
      mode = argv[++i];
    } else if (arg.starts_with("--mode=")) {
      mode = std::string(arg.substr(7));
    }
  }
  return mode;
}

int ExecDraProgram(char** argv, std::string_view mode) {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  std::filesystem::path program = self.parent_path() / kDraProgram;
  if (ec || ::access(program.c_str(), X_OK) != 0) {
    spdlog::error("--mode {} needs {} (installed next to edgefd-deviceplugin), which is missing",
                  mode, program.string());
    return kExitFailure;
  }
  SkipUnusedLibraryInitAcrossExec();  // it links libcurl (memory.h)
  ::execv(program.c_str(), argv);
  spdlog::error("cannot run {}: {}", program.string(), std::strerror(errno));
  return kExitFailure;
}

}  // namespace edgefd::deviceplugin
