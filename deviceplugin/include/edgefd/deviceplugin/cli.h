#pragma once

namespace edgefd::deviceplugin {

/// The whole edgefd-deviceplugin command line; main() only calls this. Exit codes: 0 after a
/// clean stop (SIGTERM/SIGINT), 1 on a runtime failure, 2 on bad usage or bad input.
int RunDevicePluginCli(int argc, char** argv);

}  // namespace edgefd::deviceplugin
