// The API server's URL, and the PEM material the client is given, checked before any
// request so that errors name the kubeconfig rather than surface as TLS failures.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <charconv>
#include <memory>
#include <vector>

#include "kube_internal.h"

namespace edgefd::kube {
namespace {

using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;
using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

BioPtr MemBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
}

// The PEM certificates in `pem`, in order (none when it holds none or is malformed).
std::vector<X509Ptr> Certificates(const std::string& pem) {
  BioPtr bio = MemBio(pem);
  std::vector<X509Ptr> out;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    out.emplace_back(cert, &X509_free);
  }
  ERR_clear_error();
  return out;
}

KeyPtr PrivateKey(const std::string& pem) {
  BioPtr bio = MemBio(pem);
  KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  ERR_clear_error();
  return key;
}

}  // namespace

// Builds a TLS client context from these PEM texts only to check them: libcurl makes the one
// it uses from the same bytes, but says less about what is wrong with them.
Status CheckPem(const std::string& ca_pem, const std::string& cert_pem, const std::string& key_pem,
                const std::string& where) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                        &SSL_CTX_free);
  if (!ctx) return Error{where + ": cannot create a TLS context"};
  if (!ca_pem.empty() && Certificates(ca_pem).empty()) {
    return Error{where + ": certificate authority is not a PEM certificate"};
  }
  if (!cert_pem.empty()) {
    std::vector<X509Ptr> chain = Certificates(cert_pem);
    if (chain.empty()) return Error{where + ": client certificate is not a PEM certificate"};
    KeyPtr key = PrivateKey(key_pem);
    if (!key) return Error{where + ": client key is not a PEM private key"};
    bool ok = SSL_CTX_use_certificate(ctx.get(), chain[0].get()) == 1 &&
              SSL_CTX_use_PrivateKey(ctx.get(), key.get()) == 1;
    for (size_t i = 1; ok && i < chain.size(); ++i) {
      ok = SSL_CTX_add1_chain_cert(ctx.get(), chain[i].get()) == 1;
    }
    ok = ok && SSL_CTX_check_private_key(ctx.get()) == 1;
    ERR_clear_error();
    if (!ok) return Error{where + ": client key does not match the client certificate"};
  }
  return Ok{};
}

Result<ApiServerUrl> ParseApiServerUrl(std::string_view url) {
  const std::string quoted = "server '" + std::string(url) + "'";
  ApiServerUrl out;
  std::string_view rest = url;
  if (rest.substr(0, 8) == "https://") {
    rest.remove_prefix(8);
  } else if (rest.substr(0, 7) == "http://") {
    rest.remove_prefix(7);
    out.tls = false;
    out.port = 80;
  } else {
    return Error{quoted + " is not an http(s) URL"};
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
  if (path.find_first_of("?#") != std::string_view::npos) {
    return Error{quoted + ": a query or fragment is not allowed"};
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  out.base_path = path;
  if (authority.find('@') != std::string_view::npos) {
    return Error{quoted + ": user information in the URL is not supported"};
  }
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return Error{quoted + ": unclosed '[' in the host"};
    out.host = authority.substr(1, close - 1);
    in6_addr addr{};
    if (inet_pton(AF_INET6, out.host.c_str(), &addr) != 1) {
      return Error{quoted + ": '" + out.host + "' is not an IPv6 address"};
    }
    out.ip_literal = true;
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Error{quoted + ": expected ':PORT' after ']'"};
      port = after.substr(1);
    }
  } else {
    size_t colon = authority.rfind(':');
    out.host = authority.substr(0, colon);
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
    if (out.host.find(':') != std::string::npos) {
      return Error{quoted + ": an IPv6 address must be in brackets ([fd00::1]:6443)"};
    }
    in_addr addr{};
    out.ip_literal = inet_pton(AF_INET, out.host.c_str(), &addr) == 1;
  }
  if (out.host.empty()) return Error{quoted + ": no host"};
  for (char c : out.host) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return Error{quoted + ": the host holds a space or control character"};
    }
  }
  if (!port.empty()) {
    unsigned value = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || p != port.data() + port.size() || value == 0 || value > 65535) {
      return Error{quoted + ": bad port '" + std::string(port) + "'"};
    }
    out.port = static_cast<uint16_t>(value);
  }
  const bool v6 = out.host.find(':') != std::string::npos;
  out.host_header = (v6 ? "[" + out.host + "]" : out.host) + ":" + std::to_string(out.port);
  return out;
}

}  // namespace edgefd::kube
