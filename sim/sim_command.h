// `tandem sim`: the SLO simulator and placement search from the command line.
//
//   tandem sim --mode=simulate --rate=6 --num_prefill=1 --prefill_tp=2 --num_decode=1 --decode_tp=1
//   tandem sim --mode=search --gpus=4 --one_prefill_one_decode
//
// `tandem sim --help` lists every flag.
#ifndef TANDEM_SIM_SIM_COMMAND_H_
#define TANDEM_SIM_SIM_COMMAND_H_

#include <iosfwd>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace tandem::sim {

// argv[0] is the command name (skipped); the rest are flags. Prints results on stdout and errors on
// stderr; returns the process exit code (0 ok, 1 runtime error, 2 bad flags).
int RunSimCommand(int argc, char** argv);

// The same with explicit streams, for tests.
int RunSimCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// The --help text.
std::string SimCommandHelp();

}  // namespace tandem::sim

#endif  // TANDEM_SIM_SIM_COMMAND_H_
