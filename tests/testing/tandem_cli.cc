#include "tests/testing/tandem_cli.h"

#include <poll.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"

namespace tandem::test_support {

const std::string& TandemBinary() {
  static const std::string* binary =
      new std::string(std::getenv("TANDEM_BINARY") ? std::getenv("TANDEM_BINARY") : TANDEM_BINARY_DIR "/cli/tandem");
  return *binary;
}

std::vector<std::string> TestBackendFlags() {
  const char* env = std::getenv("TANDEM_TEST_BACKEND_FLAGS");
  if (env == nullptr) return {};
  return absl::StrSplit(env, ' ', absl::SkipEmpty());
}

std::string RunTandem(const std::vector<std::string>& args) {
  std::string command = TandemBinary();
  for (const std::string& a : args) absl::StrAppend(&command, " '", a, "'");
  absl::StrAppend(&command, " 2>/dev/null");
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    ADD_FAILURE() << "popen failed: " << command;
    return "";
  }
  std::string out;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  EXPECT_EQ(pclose(pipe), 0) << command;
  return out;
}

std::vector<int32_t> TandemRunIds(const std::string& model, const std::vector<int32_t>& prompt, int max_tokens,
                                  const std::vector<std::string>& extra) {
  std::vector<std::string> run = {"run", "--model", model, "--tokens", absl::StrJoin(prompt, ","),
                                  "--max-tokens", absl::StrCat(max_tokens), "--ignore-eos", "--print-ids"};
  run.insert(run.end(), extra.begin(), extra.end());
  for (const std::string& flag : TestBackendFlags()) run.push_back(flag);
  std::vector<int32_t> ids;
  for (absl::string_view line : absl::StrSplit(RunTandem(run), '\n', absl::SkipEmpty())) {
    int32_t id;
    EXPECT_TRUE(absl::SimpleAtoi(line, &id)) << line;
    ids.push_back(id);
  }
  return ids;
}

ClusterUp AwaitClusterUp(Subprocess& child, bool want_http, absl::Duration timeout) {
  ClusterUp up;
  const absl::Time deadline = absl::Now() + timeout;
  std::string line;
  while ((up.router.empty() || (want_http && up.http.empty())) && absl::Now() < deadline) {
    pollfd p{child.stdout_fd, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    char c;
    if (read(child.stdout_fd, &c, 1) != 1) break;  // it exited
    if (c != '\n') {
      line += c;
      continue;
    }
    if (absl::string_view rest = line; absl::ConsumePrefix(&rest, "tandem cluster up: router at ")) {
      up.router = std::string(rest.substr(0, rest.find(' ')));
      up.line = line;
    }
    if (absl::string_view rest = line; absl::ConsumePrefix(&rest, "OpenAI API: http://")) {
      up.http = std::string(rest.substr(0, rest.find('/')));
    }
    line.clear();
  }
  return up;
}

}  // namespace tandem::test_support
