// Peak resident memory of `edgefd-labeller --dry-run`, as the kernel accounts it (ru_maxrss
// of the finished child). Usage: dryrun_rss [--runs N] [--json] [-- extra labeller args].
// Target: < 10 MiB.
#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "edgefd/common/json.h"
#include "edgefd/testing/paths.h"

extern char** environ;

int main(int argc, char** argv) {
  int runs = 21;
  bool json = false;
  std::vector<std::string> args = {edgefd::testing::LabellerBin(), "--dry-run"};
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--json") == 0) {
      json = true;
    } else if (std::strcmp(argv[i], "--") == 0) {
      for (++i; i < argc; ++i) args.emplace_back(argv[i]);
    } else {
      std::fprintf(stderr, "usage: dryrun_rss [--runs N] [--json] [-- labeller args]\n");
      return 2;
    }
  }
  std::vector<char*> cargs;
  for (auto& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);

  std::vector<long> kib;
  for (int r = 0; r < runs; ++r) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    if (posix_spawn(&pid, cargs[0], &actions, nullptr, cargs.data(), environ) != 0) {
      std::perror(cargs[0]);
      return 1;
    }
    posix_spawn_file_actions_destroy(&actions);
    int status = 0;
    rusage usage{};
    wait4(pid, &status, 0, &usage);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::fprintf(stderr, "%s exited with status %d\n", cargs[0], status);
      return 1;
    }
    kib.push_back(usage.ru_maxrss);
  }
  std::sort(kib.begin(), kib.end());
  double median_mib = kib[kib.size() / 2] / 1024.0;
  double max_mib = kib.back() / 1024.0;
  if (json) {
    const edgefd::Json report = {{"runs", runs},
                                 {"peak_rss_mib_median", edgefd::RoundTo(median_mib, 2)},
                                 {"peak_rss_mib_max", edgefd::RoundTo(max_mib, 2)},
                                 {"target_mib", 10}};
    std::printf("%s\n", edgefd::DumpJson(report).c_str());
  } else {
    std::printf(
        "edgefd-labeller --dry-run peak RSS over %d runs: median %.2f MiB, max %.2f MiB "
        "(target < 10 MiB)\n",
        runs, median_mib, max_mib);
  }
  return 0;
}
