#pragma once

// Idle memory of the daemons (DESIGN.md: the agent under 15 MiB). Most of it is shared-library
// text; part of that belongs to libraries no edgefd code ever calls, loaded only because
// Debian's libcurl4 depends on them for protocols and TLS stacks edgefd never uses (RTMP, LDAP,
// SSH, Kerberos, and GnuTLS with p11-kit, nettle and friends beside the OpenSSL that libcurl
// uses). The dynamic loader and their constructors touch their pages at start-up; nothing
// touches them again.

#include <chrono>
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

/// Which file mappings a release looks at.
enum class ReleaseScope {
  kUnusedLibraries,  ///< those of kUnusedLibraries
  kEveryFile,        ///< every regular file: the program, every library, locale data
};

/// The decision of a release, given the text of /proc/self/smaps and an address in the
/// caller's own code: the read-only mappings in `scope` that hold no copied (anonymous) page;
/// nothing where smaps does not show that code's mapping executable and resident (under
/// qemu-user guest code is mapped without PROT_EXEC).
std::vector<PageRange> PagesToRelease(std::string_view smaps, uintptr_t own_code,
                                      ReleaseScope scope = ReleaseScope::kUnusedLibraries);

/// Gives back what start-up left resident that the idle program does not need. Of the idle
/// DRA program's 20.8 MiB, 17.7 were clean pages of the program's and its libraries' files, most
/// touched once at start-up only: OpenSSL's initialisation and the TLS handshake (libcrypto
/// alone 4 MiB), gRPC's set-up, parsing flags, rules and inventory, the loader's symbol lookups
/// in every library (the kernel maps 64 KiB around each page read). The release unmaps the
/// clean pages of every read-only file mapping (ReleaseScope::kEveryFile), the way memory
/// pressure would: they stay in the page cache, and what the program touches again is mapped
/// again from there on its first touch (a minor fault per 64 KiB; a read from disk only if the
/// kernel reclaimed the page meanwhile, as it may for any clean page). Then the free memory
/// malloc keeps in its arenas goes (malloc_trim). Call when start-up is over; again later does
/// no harm.
void ReleaseStartUpMemory();

/// The main thread of a daemon whose start-up is done: waits for a stop (WaitForStop), giving
/// back start-up memory (ReleaseStartUpMemory) now and again `settles` later, when what start-up
/// set off on other threads is surely over: the kubelet's registration and first calls, the
/// first pass of the DRA pool and its check-in 5 s after the registration.
void IdleUntilStop(std::chrono::milliseconds settles = std::chrono::seconds(10));

/// Called just before exec of a program that links libcurl (edgefd-deviceplugin-dra,
/// edgefd-labeller-agent): sets GNUTLS_NO_IMPLICIT_INIT=1 in the environment, so that GnuTLS,
/// which libcurl4 loads through librtmp and nothing calls, skips the global initialisation its
/// constructor would run at load (its random generator and crypto back-ends: 0.2 MiB of heap,
/// measured with dra_bench). TLS is OpenSSL's throughout and is not touched. A value already
/// set is kept.
void SkipUnusedLibraryInitAcrossExec();

}  // namespace edgefd
