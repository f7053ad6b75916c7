#include "common/subprocess.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"

namespace tandem {

absl::StatusOr<Subprocess> SpawnProcess(const std::string& name, const std::string& binary,
                                        const std::vector<std::string>& args) {
  int fds[2];
  if (pipe(fds) != 0) return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  }
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, nullptr);
    execv(binary.c_str(), argv.data());
    std::fprintf(stderr, "exec %s failed: %s\n", binary.c_str(), std::strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  Subprocess child;
  child.name = name;
  child.pid = pid;
  child.stdout_fd = fds[0];
  return child;
}

bool CheckExited(Subprocess& child) {
  if (child.exited) return true;
  int status;
  if (waitpid(child.pid, &status, WNOHANG) == child.pid) {
    child.exited = true;
    child.wait_status = status;
  }
  return child.exited;
}

std::string DescribeWaitStatus(int wait_status) {
  if (WIFSIGNALED(wait_status)) return absl::StrCat("signal ", WTERMSIG(wait_status));
  return absl::StrCat("status ", WEXITSTATUS(wait_status));
}

absl::Status AwaitListening(Subprocess& child, absl::Duration timeout) {
  const std::string prefix = "listening on ";
  const std::string metrics_prefix = "metrics on ";
  const std::string http_prefix = "http on ";
  std::string line;
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    pollfd p{child.stdout_fd, POLLIN, 0};
    if (poll(&p, 1, 100) > 0) {
      char c;
      const ssize_t n = read(child.stdout_fd, &c, 1);
      if (n > 0) {
        if (c != '\n') {
          line.push_back(c);
          continue;
        }
        if (line.rfind(prefix, 0) == 0) {
          child.address = line.substr(prefix.size());
          return absl::OkStatus();
        }
        if (line.rfind(metrics_prefix, 0) == 0) child.metrics_address = line.substr(metrics_prefix.size());
        if (line.rfind(http_prefix, 0) == 0) child.http_address = line.substr(http_prefix.size());
        line.clear();
        continue;
      }
      // EOF: the child closed stdout, so it is exiting; fall through to reap it.
      for (int i = 0; i < 50 && !CheckExited(child); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (CheckExited(child)) {
      return absl::UnavailableError(
          absl::StrCat(child.name, " exited during start-up (", DescribeWaitStatus(child.wait_status), ")"));
    }
  }
  return absl::DeadlineExceededError(
      absl::StrCat(child.name, " did not report ready within ", absl::FormatDuration(timeout)));
}

void StopProcesses(std::vector<Subprocess>& children, absl::Duration grace) {
  for (Subprocess& c : children) {
    if (!CheckExited(c)) kill(c.pid, SIGTERM);
  }
  const absl::Time deadline = absl::Now() + grace;
  for (Subprocess& c : children) {
    while (!CheckExited(c)) {
      if (absl::Now() > deadline) {
        kill(c.pid, SIGKILL);
        waitpid(c.pid, &c.wait_status, 0);
        c.exited = true;
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    if (c.stdout_fd >= 0) {
      close(c.stdout_fd);
      c.stdout_fd = -1;
    }
  }
}

}  // namespace tandem

namespace tandem {

std::string SelfExecutable() {
  char path[4096];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  if (n <= 0) return "/proc/self/exe";
  return std::string(path, static_cast<size_t>(n));
}

void SetProcessTitle(const std::string& name) { prctl(PR_SET_NAME, name.substr(0, 15).c_str(), 0, 0, 0); }

}  // namespace tandem
