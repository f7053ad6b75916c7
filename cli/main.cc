// The `tandem` command: dispatches to the subcommands (DESIGN.md, "The tandem command").
#include <array>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "backend/registry.h"
#include "cli/commands.h"
#include "sim/sim_command.h"

namespace {

struct Subcommand {
  const char* name;
  int (*run)(const std::vector<std::string>&);
  const char* help;
};

constexpr Subcommand kSubcommands[] = {
    {"run", tandem::RunCommand, "offline generation in one process: a prompt or token ids in, tokens out"},
    {"mkmodel", tandem::MkmodelCommand, "write a random-weight model in the Hugging Face layout"},
    {"convert", tandem::ConvertCommand, "convert a llama2.c checkpoint + tokenizer into the Hugging Face layout"},
    {"up", tandem::UpCommand, "start a local cluster: router + prefill + decode (or colocated) processes"},
    {"serve", tandem::ServeCommand, "the one-device server: a router and one colocated worker"},
    {"generate", tandem::GenerateCommand, "client: send a prompt to a router, stream the answer"},
    {"router", tandem::RouterCommand, "the router daemon (the cluster's front door)"},
    {"prefill", tandem::PrefillCommand, "a prefill worker daemon"},
    {"decode", tandem::DecodeCommand, "a decode worker daemon"},
    {"colocated", tandem::ColocatedCommand, "a colocated worker daemon: prefill and decode in one batch"},
    {"profile", tandem::ProfileCommand, "measure the engine on this machine; write the latency model JSON"},
    {"bench", tandem::BenchCommand, "load generator: open-loop arrivals, SLOs, goodput; vLLM-style summary"},
    {"health", tandem::HealthCommand, "gRPC health check of a router or worker: exit 0 when SERVING"},
    {"render-chat", tandem::RenderChatCommand,
     "render a conversation with a model's chat template (transformers' apply_chat_template)"},
};

// Named in DESIGN.md and not built yet: say so instead of pretending.
constexpr std::array<const char*, 0> kNotYetBuilt = {};

void PrintUsage() {
  std::fprintf(stderr,
               "usage: tandem SUBCOMMAND [flags]   (tandem help SUBCOMMAND, or tandem SUBCOMMAND --help, for its "
               "flags; tandem --version)\n\n");
  for (const Subcommand& s : kSubcommands) std::fprintf(stderr, "  %-10s %s\n", s.name, s.help);
  std::fprintf(stderr, "  %-10s %s\n", "sim", "SLO simulator and placement search");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    PrintUsage();
    return argc < 2 ? 2 : 0;
  }
  if (std::strcmp(argv[1], "--version") == 0 || std::strcmp(argv[1], "version") == 0) {
    const std::vector<std::string> backends = tandem::AvailableBackends();
    std::string list;
    for (const std::string& b : backends) list += (list.empty() ? "" : ", ") + b;
    std::printf("tandem %s (backends: %s)\n", TANDEM_VERSION, list.c_str());
    return 0;
  }
  // `tandem help COMMAND` is `tandem COMMAND --help`.
  if (std::strcmp(argv[1], "help") == 0) {
    if (argc < 3) {
      PrintUsage();
      return 0;
    }
    if (std::strcmp(argv[2], "sim") == 0) {
      char help[] = "--help";
      char* sim_argv[] = {argv[2], help};
      return tandem::sim::RunSimCommand(2, sim_argv);
    }
    for (const Subcommand& s : kSubcommands) {
      if (std::strcmp(argv[2], s.name) == 0) return s.run({"--help"});
    }
    std::fprintf(stderr, "tandem help: unknown subcommand '%s'\n\n", argv[2]);
    PrintUsage();
    return 2;
  }
  // The simulator parses its own argv (argv[0] is skipped): hand it the subcommand onwards.
  if (std::strcmp(argv[1], "sim") == 0) return tandem::sim::RunSimCommand(argc - 1, argv + 1);
  const std::vector<std::string> args(argv + 2, argv + argc);
  for (const Subcommand& s : kSubcommands) {
    if (std::strcmp(argv[1], s.name) == 0) return s.run(args);
  }
  for (const char* name : kNotYetBuilt) {
    if (std::strcmp(argv[1], name) == 0) {
      std::fprintf(stderr, "tandem %s: not implemented yet (UNIMPLEMENTED)\n", name);
      return 3;
    }
  }
  std::fprintf(stderr, "tandem: unknown subcommand '%s'\n\n", argv[1]);
  PrintUsage();
  return 2;
}
