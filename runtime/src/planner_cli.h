#pragma once

// The planner's commands of edgefd-pipeline: calibrate, plan, probe-link (planner.h).

#include <optional>

namespace CLI {
class App;
}

namespace edgefd::runtime {

struct PlannerCommands;

/// Adds the three commands to `app`; the returned object holds their flags and must outlive
/// the parse.
PlannerCommands* AddPlannerCommands(CLI::App& app);
/// Runs whichever planner command was parsed; nullopt when none was.
std::optional<int> RunPlannerCommand(PlannerCommands& commands);

}  // namespace edgefd::runtime
