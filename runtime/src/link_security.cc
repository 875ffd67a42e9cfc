#include "link_security.h"

#include <grpcpp/security/server_credentials.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <tuple>

namespace edgefd::runtime {
namespace {

struct Pems {
  std::string cert, key, ca;
};

// At most `limit` bytes of `path`, or an Error naming `flag` and the file.
Result<std::string> ReadLimited(const std::string& flag, const std::string& path, size_t limit,
                                const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{flag + " " + path + ": cannot read: " + std::strerror(errno)};
  std::string text(limit + 1, '\0');
  in.read(text.data(), std::streamsize(text.size()));
  text.resize(size_t(in.gcount()));
  if (text.size() > limit) return Error{flag + " " + path + ": larger than " + what};
  return text;
}

Result<std::string> ReadPem(const std::string& flag, const std::string& path) {
  auto text = ReadLimited(flag, path, 1 << 20, "1 MiB, not a PEM file");
  if (!text) return text;
  if (text->find("-----BEGIN ") == std::string::npos) {
    return Error{flag + " " + path + ": not PEM (no '-----BEGIN ' line)"};
  }
  return text;
}

Result<Pems> ReadTls(const LinkSecurity& tls) {
  if (tls.cert.empty() || tls.key.empty() || tls.ca.empty()) {
    return Error{
        "--tls-cert, --tls-key and --tls-ca go together: mutual TLS needs this end's "
        "certificate and key and the CA of the other end"};
  }
  Pems pems;
  for (auto [flag, path, out] :
       {std::tuple{"--tls-cert", &tls.cert, &pems.cert},
        std::tuple{"--tls-key", &tls.key, &pems.key}, std::tuple{"--tls-ca", &tls.ca, &pems.ca}}) {
    auto text = ReadPem(flag, *path);
    if (!text) return text.error();
    *out = std::move(*text);
  }
  return pems;
}

}  // namespace

Result<std::string> ReadLinkToken(const std::string& path) {
  auto text = ReadLimited("--token-file", path, 4096, "4 KiB, not a token");
  if (!text) return text;
  while (!text->empty() && std::strchr(" \t\r\n", text->back()) != nullptr) text->pop_back();
  if (text->size() < 16 || text->size() > 1024) {
    return Error{"--token-file " + path + ": the token has " + std::to_string(text->size()) +
                 " characters; it takes 16 to 1024 (make one with: head -c 32 /dev/urandom | "
                 "base64)"};
  }
  for (unsigned char c : *text) {
    if (c < 0x21 || c > 0x7e) {
      return Error{"--token-file " + path +
                   ": the token holds a space, a control or a non-ASCII byte; it travels as gRPC "
                   "metadata, which takes printable ASCII"};
    }
  }
  return text;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  // Every byte of the longer one is visited whatever matches, and the lengths are part of the
  // result, so the time says nothing of where two strings differ.
  const size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? a[i] : 0, y = i < b.size() ? b[i] : 0;
    diff |= x ^ y;
  }
  return diff == 0;
}

Result<std::shared_ptr<grpc::ServerCredentials>> StageServerCredentials(
    const LinkSecurity& security) {
  if (!security.Tls()) return grpc::InsecureServerCredentials();
  auto pems = ReadTls(security);
  if (!pems) return pems.error();
  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = pems->ca;
  options.pem_key_cert_pairs.push_back({pems->key, pems->cert});
  return grpc::SslServerCredentials(options);
}

Result<std::shared_ptr<grpc::ChannelCredentials>> StageChannelCredentials(
    const LinkSecurity& security) {
  if (!security.Tls()) return std::shared_ptr<grpc::ChannelCredentials>();
  auto pems = ReadTls(security);
  if (!pems) return pems.error();
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = pems->ca;
  options.pem_private_key = pems->key;
  options.pem_cert_chain = pems->cert;
  return grpc::SslCredentials(options);
}

Result<std::string> LinkToken(const LinkSecurity& security) {
  if (!security.Token()) return std::string();
  return ReadLinkToken(security.token_file);
}

bool PresentsToken(const grpc::ServerContext& context, const std::string& token) {
  if (token.empty()) return true;
  const auto& metadata = context.client_metadata();
  auto [first, last] = metadata.equal_range(kTokenHeader);
  if (first == last || std::next(first) != last) return false;  // none, or several
  std::string_view value(first->second.data(), first->second.size());
  const std::string_view prefix = kTokenPrefix;
  if (value.substr(0, prefix.size()) != prefix) return false;
  return ConstantTimeEquals(value.substr(prefix.size()), token);
}

bool LocalOnly(const std::string& address) {
  if (address.rfind("unix:", 0) == 0) return true;
  const std::string host = address.substr(0, address.rfind(':'));
  return host == "localhost" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

}  // namespace edgefd::runtime
