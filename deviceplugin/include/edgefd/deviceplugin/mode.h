#pragma once

#include <string>
#include <string_view>

namespace edgefd::deviceplugin {

/// The program the DRA modes run: it links the Kubernetes API client (OpenSSL),
/// which the plain device plugin leaves out to stay small.
inline constexpr std::string_view kDraProgram = "edgefd-deviceplugin-dra";

/// The --mode the command line asks for (`--mode MODE` or `--mode=MODE`, the last one wins,
/// nothing after `--`), as the parser will read it; "" when there is none. Read before the
/// parser runs, because the DRA modes take flags that only kDraProgram knows.
std::string ModeInArgs(int argc, char** argv);

/// Replaces this process with kDraProgram from this program's directory, with the same
/// arguments; returns only when that fails (exit code 1, after a message naming the program
/// and `mode`).
int ExecDraProgram(char** argv, std::string_view mode);

}  // namespace edgefd::deviceplugin
