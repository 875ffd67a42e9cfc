#pragma once

#include <optional>
#include <string_view>

namespace edgefd::deviceplugin {

/// The program the DRA modes run: it links the Kubernetes API client (cpprestsdk, OpenSSL),
/// which the plain device plugin leaves out to stay small.
inline constexpr std::string_view kDraProgram = "edgefd-deviceplugin-dra";

/// Looks for `--mode MODE` / `--mode=MODE` in the command line. `device-plugin` (or no
/// --mode) returns nullopt: carry on here. `dra` and `both` exec kDraProgram from this
/// program's directory with the same arguments and return only when that fails (exit code 1,
/// with a message naming the program). Any other value is a usage error (exit code 2).
std::optional<int> HandOverMode(int argc, char** argv);

}  // namespace edgefd::deviceplugin
