#pragma once

// Idle memory of the daemons (DESIGN.md: the agent under 15 MiB). Most of it is shared-library
// text; part of that belongs to libraries no edgefd code ever calls, loaded only because
// Debian's libcurl4 depends on them for protocols and TLS stacks edgefd never uses (RTMP, LDAP,
// SSH, Kerberos, and GnuTLS with p11-kit, nettle and friends beside the OpenSSL that libcurl
// uses). The dynamic loader and their constructors touch their pages at start-up; nothing
// touches them again.

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace edgefd {

/// The shared libraries that ReleaseUnusedLibraryPages gives back (file name prefixes).
extern const char* const kUnusedLibraries[];
extern const size_t kUnusedLibraryCount;

/// Unmaps the resident pages of the libraries in kUnusedLibraries from this process: their
/// read-only file mappings whose pages are all clean page-cache pages (madvise MADV_DONTNEED:
/// nothing is lost, a page touched again is mapped again from the page cache, where the kernel
/// may reclaim it meanwhile). Mappings the loader wrote to (relocations) are left alone. Call
/// once, after start-up. Returns the number of mappings released.
size_t ReleaseUnusedLibraryPages();

struct PageRange {
  uintptr_t begin = 0, end = 0;
};

/// ReleaseUnusedLibraryPages' decision, given the text of /proc/self/smaps and an address in
/// the caller's own code: nothing where smaps does not show that code's mapping executable and
/// resident (under qemu-user guest code is mapped without PROT_EXEC).
std::vector<PageRange> PagesToRelease(std::string_view smaps, uintptr_t own_code);

/// Gives back what start-up left resident that the idle program does not need: the pages of
/// kUnusedLibraries touched again since the first ReleaseUnusedLibraryPages (curl_global_init,
/// and the loader's lazy symbol lookups: each first call of a function in a library bound
/// lazily, gRPC's and libstdc++'s, searches the hash tables of the libraries ahead of it in
/// load order, libcurl's dependencies among them, and the kernel maps 64 KiB around each page
/// read), and the free memory malloc keeps in its arenas (malloc_trim). Call when start-up is
/// over; again later does no harm.
void ReleaseStartUpMemory();

/// Called just before exec of a program that links libcurl (edgefd-deviceplugin-dra,
/// edgefd-labeller-agent): sets GNUTLS_NO_IMPLICIT_INIT=1 in the environment, so that GnuTLS,
/// which libcurl4 loads through librtmp and nothing calls, skips the global initialisation its
/// constructor would run at load (its random generator and crypto back-ends: 0.2 MiB of heap,
/// measured with dra_bench). TLS is OpenSSL's throughout and is not touched. A value already
/// set is kept.
void SkipUnusedLibraryInitAcrossExec();

}  // namespace edgefd
