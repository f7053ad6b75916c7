// A small per-subcommand flag parser: `--name value`, `--name=value`, and `--flag` for booleans.
// Each subcommand declares its flags, so `tandem run --help` lists exactly what `run` takes.
// Unknown flags, missing values and malformed numbers are InvalidArgument naming the flag.
#ifndef TANDEM_COMMON_FLAGS_H_
#define TANDEM_COMMON_FLAGS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace tandem {

class FlagParser {
 public:
  explicit FlagParser(std::string usage_line) : usage_line_(std::move(usage_line)) {}

  void AddString(const std::string& name, std::string* value, const std::string& help);
  void AddInt(const std::string& name, int64_t* value, const std::string& help);
  void AddDouble(const std::string& name, double* value, const std::string& help);
  void AddBool(const std::string& name, bool* value, const std::string& help);

  // Parses args (without the program and subcommand names). Sets help_requested() on --help / -h.
  absl::Status Parse(const std::vector<std::string>& args);
  bool help_requested() const { return help_requested_; }
  // True when --name appeared on the command line.
  bool WasSet(const std::string& name) const;
  // Positional arguments, in order.
  const std::vector<std::string>& positional() const { return positional_; }
  std::string Usage() const;

 private:
  enum class Kind { kString, kInt, kDouble, kBool };
  struct Flag {
    std::string name;
    Kind kind;
    void* value;
    std::string help;
    std::string default_text;
    bool set = false;
  };
  Flag* Find(const std::string& name);
  absl::Status Assign(Flag& flag, const std::string& text);

  std::string usage_line_;
  std::vector<Flag> flags_;
  std::vector<std::string> positional_;
  bool help_requested_ = false;
};

}  // namespace tandem

#endif  // TANDEM_COMMON_FLAGS_H_
