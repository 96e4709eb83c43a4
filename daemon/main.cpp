// The pgnap executable: everything else lives in the libraries, which the tests link.
#include "daemon/cli.h"

int main(int argc, char** argv) { return pgnap::daemon::run_cli(argc, argv); }
