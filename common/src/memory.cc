#include "edgefd/common/memory.h"

#include <malloc.h>
#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

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

}  // namespace

// One mapping of /proc/self/smaps as far as the decision needs it.
struct Mapping {
  unsigned long begin = 0, end = 0;
  bool writable = true;
  bool unused = false;
  long anonymous_kib = -1;  // -1: not read yet
};

// Gives back the mapping's pages when every one of them is a clean page-cache page (no copy the
// loader wrote): MADV_DONTNEED then only unmaps them here, and a later touch maps them again
// from the page cache. A writable mapping, or one holding an anonymous (copied) page, keeps
// everything: for those, MADV_DONTNEED would throw the copies away.
bool Release(const Mapping& m) {
  if (!m.unused || m.writable || m.anonymous_kib != 0) return false;
  return ::madvise(reinterpret_cast<void*>(m.begin), m.end - m.begin, MADV_DONTNEED) == 0;
}

size_t ReleaseUnusedLibraryPages() {
  std::FILE* smaps = std::fopen("/proc/self/smaps", "re");
  if (smaps == nullptr) return 0;
  size_t released = 0;
  Mapping current;
  char line[1024];
  while (std::fgets(line, sizeof line, smaps) != nullptr) {
    unsigned long begin = 0, end = 0;
    char perms[5] = {};
    int path_at = 0;
    if (std::sscanf(line, "%lx-%lx %4s %*s %*s %*s %n", &begin, &end, perms, &path_at) >= 3 &&
        path_at > 0) {
      released += Release(current) ? 1 : 0;
      std::string_view path(line + path_at);
      if (!path.empty() && path.back() == '\n') path.remove_suffix(1);
      current = {begin, end, perms[1] == 'w', path.starts_with('/') && Unused(path), -1};
      continue;
    }
    long kib = 0;
    if (std::sscanf(line, "Anonymous: %ld kB", &kib) == 1) current.anonymous_kib = kib;
  }
  released += Release(current) ? 1 : 0;
  std::fclose(smaps);
  return released;
}

void ReleaseStartUpMemory() {
  ReleaseUnusedLibraryPages();
  ::malloc_trim(0);
}

void SkipUnusedLibraryInitAcrossExec() { ::setenv("GNUTLS_NO_IMPLICIT_INIT", "1", 0); }

}  // namespace edgefd
