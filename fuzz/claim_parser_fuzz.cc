// Any bytes as the ResourceClaim the API server answered: ParseClaim returns a claim or an
// error naming the claim, never crashes, hangs or throws, and a claim it returns keeps the
// parser's promises (only allocated claims have results, each names driver, pool and device,
// at most 4096 of them).
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "edgefd/dra/resource_api.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto claim = edgefd::dra::ParseClaim(text, "ResourceClaim ns/fuzz");
  if (!claim) {
    if (claim.error().message.rfind("ResourceClaim ns/fuzz", 0) != 0) {
      std::fprintf(stderr, "error without the claim's name: %s\n", claim.error().message.c_str());
      std::abort();
    }
    return 0;
  }
  bool ok = (claim->allocated || claim->results.empty()) && claim->results.size() <= 4096;
  for (const edgefd::dra::AllocationResult& r : claim->results) {
    ok = ok && !r.driver.empty() && !r.pool.empty() && !r.device.empty();
  }
  if (!ok) {
    std::fprintf(stderr, "ParseClaim broke a promise: allocated=%d results=%zu\n", claim->allocated,
                 claim->results.size());
    std::abort();
  }
  return 0;
}
