// Whether edgefd-pipeline's default thread team shares cores gracefully (issue 16, DESIGN.md
// "Runtime contract"): runs of the real binary in interleaved pairs (A, B, A, B, ...) in one
// run, medians and their ratio A/B, for tiny-YOLO and conv 720p:
//   load   one busy loop per online core (threads of this program, for the pairs only):
//          the default vs --threads 1; target >= 0.9
//   quota  inside a cgroup with a 1-CPU CFS quota (100000/100000; v2 cpu.max, else v1) when
//          this machine lets us make one (root), else reported as skipped: the default vs
//          --threads 1; target >= 0.9
//   quiet  the default vs the behaviour before (threads = the cpuset's size, libgomp's own
//          spin-then-sleep: GOMP_SPINCOUNT=300000 is what libgomp does when nothing is set);
//          target >= 0.95. The runtime's own loops (the fused conv) no longer run on OpenMP, so
//          "before" is only the binary before that change: --baseline-bin names it (e.g. a
//          build of main from before); without it the same binary runs with those settings.
// Each measurement is one `run` stopped by SIGTERM after --seconds (its report covers the
// frames so far, warm-up excluded), so the whole bench takes 2 x pairs x seconds per row.
//
//   sharing_bench [--json] [--pairs N] [--seconds S] [--pipeline-bin PATH] [--baseline-bin PATH]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "edgefd/common/json.h"
#include "edgefd/runtime/threads.h"
#include "edgefd/testing/cgroup.h"
#include "edgefd/testing/paths.h"
#include "edgefd/testing/process.h"

namespace {

using edgefd::Json;

struct Variant {
  std::string name;              // "default", "--threads 1", "before"
  std::string args;              // extra run flags
  std::vector<std::string> env;  // extra environment
  std::string bin;               // the program; empty: --pipeline-bin
};

struct Row {
  std::string scenario, model;
  Variant a, b;
  double target = 0;
  std::vector<double> a_fps, b_fps;
  std::string a_threads, b_threads;  // the report's reason, from the last run
  std::string error;
};

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string ModelArgs(const std::string& model) {
  return model == "conv" ? "--model conv --width 1280 --height 720" : "--model yolo-tiny";
}

// One run for `seconds`, then SIGTERM: its fps and thread reason, or an error.
bool Measure(const std::string& bin, const Row& row, const Variant& v, double seconds,
             const edgefd::testing::QuotaCgroup* cgroup, double* fps, std::string* threads,
             std::string* error) {
  std::vector<std::string> argv = edgefd::testing::CommandLine(
      v.bin.empty() ? bin : v.bin,
      "run " + ModelArgs(row.model) + " --frames 100000000 --warmup 2 --json " + v.args);
  if (cgroup != nullptr) argv = cgroup->Wrap(argv);
  edgefd::testing::Child child(argv, v.env);
  child.WaitFor([](const std::string&, const std::string&) { return false; },
                std::chrono::milliseconds(int64_t(seconds * 1000)));
  const int code = child.Terminate();
  auto json = edgefd::ParseJson(child.out(), "run --json");
  if (code != 0 || !json.ok() || !(*json)["fps"].is_number()) {
    *error = row.scenario + " " + row.model + " " + v.name + ": exit " + std::to_string(code) +
             ", " + child.err().substr(child.err().size() > 400 ? child.err().size() - 400 : 0);
    return false;
  }
  *fps = (*json)["fps"].get<double>();
  if (!(*fps > 0)) {
    *error = row.scenario + " " + row.model + " " + v.name + ": no frame after the warm-up in " +
             std::to_string(seconds) + " s (raise --seconds)";
    return false;
  }
  *threads = (*json)["threads"]["reason"].get<std::string>();
  return true;
}

// A, B, A, B, ... `pairs` times.
void RunPairs(const std::string& bin, Row& row, int pairs, double seconds,
              const edgefd::testing::QuotaCgroup* cgroup) {
  for (int i = 0; i < pairs && row.error.empty(); ++i) {
    for (bool first : {true, false}) {
      const Variant& v = first ? row.a : row.b;
      double fps = 0;
      std::string* threads = first ? &row.a_threads : &row.b_threads;
      if (!Measure(bin, row, v, seconds, cgroup, &fps, threads, &row.error)) return;
      (first ? row.a_fps : row.b_fps).push_back(fps);
    }
  }
}

// One spinning thread per online core while it lives.
class BusyLoops {
 public:
  BusyLoops() {
    const unsigned n = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < n; ++i) {
      loops_.emplace_back([this] {
        volatile uint64_t x = 0;
        while (!stop_.load(std::memory_order_relaxed)) x = x + 1;
      });
    }
  }
  ~BusyLoops() {
    stop_ = true;
    for (std::thread& t : loops_) t.join();
  }
  size_t size() const { return loops_.size(); }

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> loops_;
};

Json RowJson(const Row& r) {
  const double a = Median(r.a_fps), b = Median(r.b_fps);
  const double ratio = b > 0 ? a / b : 0;
  return {{"scenario", r.scenario},
          {"model", r.model},
          {"a", r.a.name},
          {"b", r.b.name},
          {"a_fps", r.a_fps},
          {"b_fps", r.b_fps},
          {"a_median_fps", edgefd::RoundTo(a, 2)},
          {"b_median_fps", edgefd::RoundTo(b, 2)},
          {"ratio", edgefd::RoundTo(ratio, 3)},
          {"target", r.target},
          {"met", r.error.empty() && ratio >= r.target},
          {"a_threads", r.a_threads},
          {"b_threads", r.b_threads},
          {"error", r.error}};
}

}  // namespace

int main(int argc, char** argv) {
  bool json = false;
  int pairs = 3;
  double seconds = 4;
  std::string bin = edgefd::testing::PipelineBin();
  std::string baseline;  // the "before" program; empty: bin
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--json") {
      json = true;
    } else if (a == "--pairs" && i + 1 < argc) {
      pairs = std::clamp(std::atoi(argv[++i]), 1, 50);
    } else if (a == "--seconds" && i + 1 < argc) {
      seconds = std::clamp(std::atof(argv[++i]), 0.5, 60.0);
    } else if (a == "--pipeline-bin" && i + 1 < argc) {
      bin = argv[++i];
    } else if (a == "--baseline-bin" && i + 1 < argc) {
      baseline = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: sharing_bench [--json] [--pairs N] [--seconds S] [--pipeline-bin "
                   "PATH] [--baseline-bin PATH]\n");
      return 2;
    }
  }
  const edgefd::runtime::CpuLimits limits =
      edgefd::runtime::ReadCpuLimits("/", edgefd::runtime::Allocation{});
  const int cpuset = std::max<int>(1, int(limits.cpuset.size()));
  const Variant kDefault{"default", "", {}, ""};
  const Variant kOne{"--threads 1", "--threads 1", {}, ""};
  const Variant kBefore{"before (threads " + std::to_string(cpuset) + ", GOMP_SPINCOUNT=300000" +
                            (baseline.empty() ? ")" : ", " + baseline + ")"),
                        "--threads " + std::to_string(cpuset),
                        {"GOMP_SPINCOUNT=300000"},
                        baseline};
  const std::vector<std::string> models = {"yolo-tiny", "conv"};

  std::vector<Row> rows;
  auto report = [&](const Row& r) {
    if (json) return;
    std::fprintf(stderr, "%-6s %-9s %-12s %9.1f fps  %-50s %9.1f fps  x%.3f (target %.2f) %s\n",
                 r.scenario.c_str(), r.model.c_str(), r.a.name.c_str(), Median(r.a_fps),
                 r.b.name.c_str(), Median(r.b_fps),
                 Median(r.b_fps) > 0 ? Median(r.a_fps) / Median(r.b_fps) : 0, r.target,
                 r.error.c_str());
  };
  auto run = [&](const std::string& scenario, const std::string& model, const Variant& b,
                 double target, const edgefd::testing::QuotaCgroup* cgroup) {
    Row r{scenario, model, kDefault, b, target, {}, {}, {}, {}, {}};
    RunPairs(bin, r, pairs, seconds, cgroup);
    report(r);
    rows.push_back(std::move(r));
  };

  size_t busy_loops = 0;
  {
    BusyLoops load;
    busy_loops = load.size();
    for (const std::string& m : models) run("load", m, kOne, 0.9, nullptr);
  }
  std::string why;
  auto cgroup = edgefd::testing::QuotaCgroup::Make(100000, 100000, &why);
  if (cgroup) {
    for (const std::string& m : models) run("quota", m, kOne, 0.9, cgroup.get());
  } else if (!json) {
    std::fprintf(stderr, "quota: skipped: %s\n", why.c_str());
  }
  for (const std::string& m : models) run("quiet", m, kBefore, 0.95, nullptr);

  if (json) {
    Json rows_json = Json::array();
    for (const Row& r : rows) rows_json.push_back(RowJson(r));
    const Json out = {{"pairs", pairs},
                      {"seconds", seconds},
                      {"cpuset", limits.cpuset},
                      {"busy_loops", busy_loops},
                      {"quota_cgroup", cgroup ? Json(cgroup->Describe()) : Json(nullptr)},
                      {"quota_skipped", cgroup ? Json(nullptr) : Json(why)},
                      {"rows", std::move(rows_json)}};
    std::printf("%s\n", edgefd::DumpJson(out, 2).c_str());
  }
  for (const Row& r : rows) {
    if (!r.error.empty()) return 1;
  }
  return 0;
}
