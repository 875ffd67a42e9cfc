#pragma once

namespace edgefd {

/// Exit codes, one meaning in every edgefd binary.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  ///< runtime failure (API server unreachable, a stage died)
inline constexpr int kExitUsage = 2;    ///< bad usage or bad input (named on stderr)

}  // namespace edgefd
