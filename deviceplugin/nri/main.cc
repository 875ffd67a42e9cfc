// edgefd-nri: the NRI plugin that makes the container runtime enforce edgefd's cores.
#include "edgefd/nri/cli.h"

int main(int argc, char** argv) { return edgefd::nri::RunNriCli(argc, argv); }
