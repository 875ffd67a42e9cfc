#pragma once

// What secures a gRPC link (transport.h, LinkSecurity) turned into gRPC's terms: credentials
// for mutual TLS and the token a stream presents. Private to the runtime library.

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_context.h>

#include <memory>
#include <string>

#include "edgefd/common/result.h"
#include "edgefd/runtime/transport.h"

namespace edgefd::runtime {

/// The metadata key the token travels in, and its value's prefix.
inline constexpr char kTokenHeader[] = "authorization";
inline constexpr char kTokenPrefix[] = "Bearer ";

/// Server credentials for `security`: mutual TLS when it names files, else plaintext.
Result<std::shared_ptr<grpc::ServerCredentials>> StageServerCredentials(
    const LinkSecurity& security);
/// Channel credentials for mutual TLS; null when `security` names no TLS files (plaintext).
Result<std::shared_ptr<grpc::ChannelCredentials>> StageChannelCredentials(
    const LinkSecurity& security);

/// The token `security` names, read once; "" when it names none.
Result<std::string> LinkToken(const LinkSecurity& security);

/// True when the call presents `token` ("authorization: Bearer TOKEN"), compared in constant
/// time. An empty `token` admits every call.
bool PresentsToken(const grpc::ServerContext& context, const std::string& token);

/// Whether `address` ("host:port", "unix:/path") can only be reached from this machine.
bool LocalOnly(const std::string& address);

}  // namespace edgefd::runtime
