// Running the `tandem` binary from process-level tests: where it is, the backend flags the GPU script
// passes, a command's stdout, `tandem run --print-ids` as ids, and the addresses `tandem up` / `tandem
// serve` print once the cluster is ready.
#ifndef TANDEM_TESTS_TESTING_TANDEM_CLI_H_
#define TANDEM_TESTS_TESTING_TANDEM_CLI_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/subprocess.h"

namespace tandem::test_support {

// The build's tandem binary, or $TANDEM_BINARY (binaries carried to another machine).
const std::string& TandemBinary();

// Extra flags for every worker and for `tandem run`, from $TANDEM_TEST_BACKEND_FLAGS (tests/gpu/run.sh
// sets "--backend cuda --dtype float32" to run a test's cluster on a GPU).
std::vector<std::string> TestBackendFlags();

// Runs `tandem ARGS` (stderr discarded) and returns its stdout; a non-zero exit is a test failure.
std::string RunTandem(const std::vector<std::string>& args);

// `tandem run --print-ids --ignore-eos` greedy (or sampled with `extra` flags) on `prompt`, with the test
// backend flags: the ids one process generates.
std::vector<int32_t> TandemRunIds(const std::string& model, const std::vector<int32_t>& prompt, int max_tokens,
                                  const std::vector<std::string>& extra = {});

// What `tandem up` / `tandem serve` print once every process is ready: "tandem cluster up: router at
// HOST:PORT (...)" (`line` keeps that whole line) and, with HTTP on, "OpenAI API: http://HOST:PORT/v1".
struct ClusterUp {
  std::string router;
  std::string http;  // empty until seen
  std::string line;
};
// Reads `child`'s stdout until the router's address (and, with `want_http`, the HTTP one) appear, the
// child exits or `timeout` passes; the addresses found so far.
ClusterUp AwaitClusterUp(Subprocess& child, bool want_http, absl::Duration timeout = absl::Seconds(60));

}  // namespace tandem::test_support

#endif  // TANDEM_TESTS_TESTING_TANDEM_CLI_H_
