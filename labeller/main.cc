#include "edgefd/labeller/cli.h"

int main(int argc, char** argv) { return edgefd::RunLabellerCli(argc, argv); }
