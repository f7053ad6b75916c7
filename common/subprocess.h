// Child daemons for `tandem up` and the multi-process tests: spawn a binary with stdout on a pipe, wait
// for its "listening on HOST:PORT" line, notice when it exits, stop it with SIGTERM then SIGKILL.
//
// Thread safety: a Subprocess is used from one thread.
#ifndef TANDEM_COMMON_SUBPROCESS_H_
#define TANDEM_COMMON_SUBPROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tandem {

struct Subprocess {
  std::string name;
  pid_t pid = -1;
  int stdout_fd = -1;
  std::string address;  // from its "listening on" line
  std::string metrics_address;  // from a "metrics on HOST:PORT" line before it, if the child printed one
  std::string http_address;     // from an "http on HOST:PORT" line before it (the router's HTTP API)
  bool exited = false;
  int wait_status = 0;
};

// Starts `binary args...`; stdout goes to a pipe, stderr is inherited. Termination signals are unblocked
// in the child.
absl::StatusOr<Subprocess> SpawnProcess(const std::string& name, const std::string& binary,
                                        const std::vector<std::string>& args);
// Reads lines until "listening on HOST:PORT" (sets `address`), or fails when the child exits or the
// timeout passes. A "metrics on HOST:PORT" line before it sets `metrics_address`, an "http on HOST:PORT"
// line `http_address`; other lines are skipped.
absl::Status AwaitListening(Subprocess& child, absl::Duration timeout);
// True (and `exited`, `wait_status` set) when the child has exited; never blocks.
bool CheckExited(Subprocess& child);
// SIGTERM to every child still running, then waits up to `grace` and SIGKILLs what is left.
void StopProcesses(std::vector<Subprocess>& children, absl::Duration grace);

// The running binary's path (readlink of /proc/self/exe), so that children show as `tandem ...` in ps,
// not as `exe`; "/proc/self/exe" when it cannot be read.
std::string SelfExecutable();

// Names this process in ps, top and ss (the kernel's 15-character comm), e.g. "tandem-decode".
void SetProcessTitle(const std::string& name);
// Human-readable "status 1" / "signal 9".
std::string DescribeWaitStatus(int wait_status);

}  // namespace tandem

#endif  // TANDEM_COMMON_SUBPROCESS_H_
