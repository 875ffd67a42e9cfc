#include "edgefd/common/memory.h"

#include <malloc.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "edgefd/common/files.h"
#include "edgefd/common/program.h"

namespace edgefd {

// Each is loaded by libcurl4 (directly or through librtmp, libldap, libssh2, libgssapi_krb5)
// and never called on the paths edgefd uses (HTTP(S) over OpenSSL, HTTP/2, no auth plug-ins;
// no Accept-Encoding is asked for, so no zstd or brotli; host names are ASCII or addresses, so
// no IDN; no cookies, so no public suffix list).
const char* const kUnusedLibraries[] = {
    "libgnutls.",    "libp11-kit.",      "libnettle.",    "libhogweed.",     "libgmp.",
    "libtasn1.",     "librtmp.",         "libldap",       "liblber",         "libsasl2.",
    "libssh2.",      "libkrb5.",         "libk5crypto.",  "libgssapi_krb5.", "libkrb5support.",
    "libcom_err.",   "libkeyutils.",     "libunistring.", "libffi.",         "libzstd.",
    "libbrotlidec.", "libbrotlicommon.", "libidn2.",      "libpsl.",         "libresolv."};
const size_t kUnusedLibraryCount = sizeof kUnusedLibraries / sizeof kUnusedLibraries[0];

namespace {

bool Unused(std::string_view path) {
  const size_t slash = path.rfind('/');
  const std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  for (size_t i = 0; i < kUnusedLibraryCount; ++i) {
    if (name.starts_with(kUnusedLibraries[i])) return true;
  }
  return false;
}

// A mapping of a file whose pages the page cache holds and gives back as they were: a regular
// file (the program, its libraries, the locale data), not a device, /proc or /sys file (whose
// mapping may be I/O memory or have side effects on a fault), nor one deleted since it was
// mapped.
bool PageCacheFile(std::string_view path) {
  return path.starts_with('/') && !path.starts_with("/dev/") && !path.starts_with("/proc/") &&
         !path.starts_with("/sys/") && !path.ends_with(" (deleted)");
}

bool InScope(std::string_view path, ReleaseScope scope) {
  if (!PageCacheFile(path)) return false;
  return scope == ReleaseScope::kEveryFile || Unused(path);
}

}  // namespace

// One mapping of /proc/self/smaps as far as the decision needs it.
struct Mapping {
  unsigned long begin = 0, end = 0;
  bool writable = true;
  bool executable = false;
  bool in_scope = false;
  long rss_kib = -1;        // -1: not read
  long anonymous_kib = -1;  // -1: not read
};

// A mapping whose pages are all clean page-cache pages (no copy the loader wrote) can be given
// back: MADV_DONTNEED then only unmaps them here, and a later touch maps them again from the
// page cache. A writable mapping, or one holding an anonymous (copied) page, keeps everything:
// for those, MADV_DONTNEED would throw the copies away.
bool Releasable(const Mapping& m) { return m.in_scope && !m.writable && m.anonymous_kib == 0; }

std::vector<PageRange> PagesToRelease(std::string_view smaps, uintptr_t own_code,
                                      ReleaseScope scope) {
  std::vector<Mapping> mappings;
  while (!smaps.empty()) {
    const size_t eol = smaps.find('\n');
    const std::string line(smaps.substr(0, eol));
    smaps.remove_prefix(eol == std::string_view::npos ? smaps.size() : eol + 1);
    unsigned long begin = 0, end = 0;
    char perms[5] = {};
    int path_at = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx %4s %*s %*s %*s %n", &begin, &end, perms, &path_at) >=
            3 &&
        path_at > 0) {
      const std::string_view path = std::string_view(line).substr(size_t(path_at));
      mappings.push_back({begin, end, perms[1] == 'w', perms[2] == 'x', InScope(path, scope)});
      continue;
    }
    if (mappings.empty()) continue;
    long kib = 0;
    if (std::sscanf(line.c_str(), "Rss: %ld kB", &kib) == 1) mappings.back().rss_kib = kib;
    if (std::sscanf(line.c_str(), "Anonymous: %ld kB", &kib) == 1) {
      mappings.back().anonymous_kib = kib;
    }
  }
  // The decision trusts that smaps describes this process as the kernel runs it: the mapping
  // that holds this very code is then executable and resident. Under qemu-user it is neither
  // (qemu maps guest code without PROT_EXEC and runs its translation), and there MADV_DONTNEED
  // on libgnutls' clean text crashed the agent at exit (armhf suite: 36 tests, exit 139); so
  // an emulator's view releases nothing.
  const auto own = std::find_if(mappings.begin(), mappings.end(), [&](const Mapping& m) {
    return m.begin <= own_code && own_code < m.end;
  });
  if (own == mappings.end() || !own->executable || own->rss_kib <= 0) return {};
  std::vector<PageRange> out;
  for (const Mapping& m : mappings) {
    if (Releasable(m)) out.push_back({m.begin, m.end});
  }
  return out;
}

namespace {

size_t Release(ReleaseScope scope) {
  // About 1 KiB a mapping; a daemon has a few hundred.
  Result<std::string> smaps = ReadFileAtMost("/proc/self/smaps", 16 << 20, "smaps");
  if (!smaps) return 0;
  size_t released = 0;
  for (const PageRange& r :
       PagesToRelease(*smaps, reinterpret_cast<uintptr_t>(&ReleaseUnusedLibraryPages), scope)) {
    released += ::madvise(reinterpret_cast<void*>(r.begin), r.end - r.begin, MADV_DONTNEED) == 0;
  }
  return released;
}

}  // namespace

size_t ReleaseUnusedLibraryPages() { return Release(ReleaseScope::kUnusedLibraries); }

void ReleaseStartUpMemory() {
  Release(ReleaseScope::kEveryFile);
  ::malloc_trim(0);
}

void IdleUntilStop(std::chrono::milliseconds settles) {
  ReleaseStartUpMemory();
  if (!WaitForStop(settles)) ReleaseStartUpMemory();
  WaitForStop();
}

void SkipUnusedLibraryInitAcrossExec() { ::setenv("GNUTLS_NO_IMPLICIT_INIT", "1", 0); }

}  // namespace edgefd
