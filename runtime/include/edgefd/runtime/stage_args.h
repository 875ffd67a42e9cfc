#pragma once

// The command line of one pipeline stage, `edgefd-pipeline stage ...`: what a user or a pod
// manifest writes, and what `edgefd-pipeline run` writes for the stage processes it starts.
// Both go through the same flag definitions, so what `run` asks for is what a stage reads.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "edgefd/common/result.h"
#include "edgefd/runtime/pipeline.h"
#include "edgefd/runtime/transport.h"
#include "edgefd/runtime/wire_format.h"

namespace CLI {
class App;
}

namespace edgefd::runtime {

/// What a stage is told.
struct StageArgs {
  ModelSpec model;
  int stages = 1;                             ///< --stages N: the pipeline's length
  int index = 0;                              ///< --index I: this stage, 0-based
  std::optional<std::pair<int, int>> layers;  ///< --layers FIRST:LAST (LAST exclusive); unset:
                                              ///< this stage's share of an even partition
  std::string listen;                         ///< --listen ADDR: where frames arrive
  std::string next;                           ///< --next ADDR: where results go
  Policy policy = Policy::kLatest;            ///< --policy latest|block
  int threads = 1;                            ///< --threads T: compute threads
  std::optional<std::vector<int>> cpus;       ///< --cpus LIST|none; unset: the allocation's
  std::string metrics_addr = "none";          ///< --metrics-addr ADDR (--metrics-port P: ":P")
  double delay_ms = 0;                        ///< --delay-ms D: extra time per frame
  int64_t idle_exit_ms = 0;                   ///< --idle-exit-ms MS: exit without input (0: never)
  LinkSecurity tls;                           ///< --token-file, --tls-cert, --tls-key,
                                              ///< --tls-ca: on both gRPC ends
  WireFormat wire_in{};                       ///< --wire-in F (float32 by default)
  WireFormat wire_out{};                      ///< --wire-out F (float32 by default)
  bool quiet = false;                         ///< --quiet: warnings and errors only
  bool check = false;                         ///< --check: print the stage's shapes and exit

  bool operator==(const StageArgs&) const = default;
};

/// --model conv|yolo-tiny, --width W, --height H, --channels C (conv), --seed S, --weights FILE.
void AddModelFlags(CLI::App& app, ModelSpec& model);
/// --token-file FILE (the pipeline's shared token), --tls-cert FILE, --tls-key FILE, --tls-ca
/// FILE (mutual TLS): who may use the gRPC links.
void AddLinkSecurityFlags(CLI::App& app, LinkSecurity& tls);
/// The model flags and every StageArgs flag.
void AddStageFlags(CLI::App& app, StageArgs& args);
/// --metrics-addr ADDR and --metrics-port P (":P"), of a stage and of the sink.
void AddPipelineMetricsFlags(CLI::App& app, std::string& address);

/// --NAME float32|float16|int8 (planner.h: activations on the wire), setting `format`.
void AddWireFlag(CLI::App& app, const std::string& name, WireFormat& format,
                 const std::string& what);

/// "latest" / "block", and back.
std::string PolicyName(Policy policy);
std::optional<Policy> ParsePolicy(const std::string& name);

/// --policy latest|block, calling `set` with what was given; `default_text` says what applies
/// without it.
void AddPolicyFlag(CLI::App& app, std::function<void(Policy)> set, const std::string& default_text);

/// Milliseconds: a finite number from 0 to 1e9 (--delay-ms); nullopt otherwise.
std::optional<double> ParseMilliseconds(const std::string& text);

/// The words that make `edgefd-pipeline` run `args`: "stage" and its flags.
std::vector<std::string> StageArgv(const StageArgs& args);
/// Reads back what StageArgv wrote (argv[0] is "stage"); an Error names the bad flag.
Result<StageArgs> ParseStageArgs(const std::vector<std::string>& argv);

}  // namespace edgefd::runtime
