// edgefd-deviceplugin-dra: the DRA kubelet plugin; edgefd-deviceplugin --mode dra|both execs it.
#include "edgefd/dra/cli.h"

int main(int argc, char** argv) { return edgefd::dra::RunDraCli(argc, argv); }
