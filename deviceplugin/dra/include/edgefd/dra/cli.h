#pragma once

namespace edgefd::dra {

/// The whole command line of edgefd-deviceplugin-dra (what `edgefd-deviceplugin --mode dra`
/// and `--mode both` exec); main() only calls this. Exit codes as the device plugin's: 0 after
/// a clean stop, 1 on a runtime failure, 2 on bad usage or input.
int RunDraCli(int argc, char** argv);

}  // namespace edgefd::dra
