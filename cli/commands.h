// Subcommands of the `tandem` command. Each takes the arguments after its name and returns the
// process exit code; errors are printed to stderr as one line naming the flag or input at fault.
#ifndef TANDEM_CLI_COMMANDS_H_
#define TANDEM_CLI_COMMANDS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tandem {

int RunCommand(const std::vector<std::string>& args);       // tandem run
int MkmodelCommand(const std::vector<std::string>& args);   // tandem mkmodel
int PrefillCommand(const std::vector<std::string>& args);   // tandem prefill
int DecodeCommand(const std::vector<std::string>& args);    // tandem decode
int ColocatedCommand(const std::vector<std::string>& args);  // tandem colocated
int RouterCommand(const std::vector<std::string>& args);    // tandem router
int GenerateCommand(const std::vector<std::string>& args);  // tandem generate
int UpCommand(const std::vector<std::string>& args);        // tandem up
int ServeCommand(const std::vector<std::string>& args);     // tandem serve
int ProfileCommand(const std::vector<std::string>& args);   // tandem profile
int BenchCommand(const std::vector<std::string>& args);     // tandem bench
int ConvertCommand(const std::vector<std::string>& args);   // tandem convert
int RenderChatCommand(const std::vector<std::string>& args);  // tandem render-chat
int HealthCommand(const std::vector<std::string>& args);      // tandem health

// The embedded default model: $TANDEM_MODEL_CACHE (or ~/.cache/tandem/models) /small, written by the
// mkmodel logic on first use. Returns its directory.
absl::StatusOr<std::string> EnsureDefaultModel();

}  // namespace tandem

#endif  // TANDEM_CLI_COMMANDS_H_
