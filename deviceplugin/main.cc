#include "edgefd/deviceplugin/cli.h"

int main(int argc, char** argv) { return edgefd::deviceplugin::RunDevicePluginCli(argc, argv); }
