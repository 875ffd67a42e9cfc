#pragma once

// A throw-away PKI for tests of TLS and mutual TLS (the labeller's API server stand-in, the
// pipeline's gRPC links), made at test time with the openssl tool.

#include <filesystem>

#include "edgefd/common/result.h"

namespace edgefd::testing {

/// A CA, a server certificate for 127.0.0.1, ::1 and localhost, a client certificate, and a
/// second CA with a server and a client certificate of its own (what a server presents after a
/// CA rotation; a client nothing trusts).
struct TestPki {
  std::filesystem::path dir;
  std::filesystem::path ca_cert, ca_key;
  std::filesystem::path server_cert, server_key;
  std::filesystem::path client_cert, client_key;
  std::filesystem::path other_ca_cert;
  std::filesystem::path other_server_cert, other_server_key;  ///< signed by other_ca_cert
  std::filesystem::path other_client_cert, other_client_key;  ///< signed by other_ca_cert

  /// Creates the files under `dir`; an Error carries the failing openssl command.
  static Result<TestPki> Create(const std::filesystem::path& dir);
};

}  // namespace edgefd::testing
