// The cpprestsdk adapter: every cpprestsdk/Boost exception stops here and becomes an Error.
#include <cpprest/http_client.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pplx/threadpool.h>

#include <boost/asio/ssl.hpp>
#include <charconv>
#include <fstream>
#include <memory>
#include <sstream>

#include "edgefd/agent/kube.h"
#include "edgefd/common/program.h"

namespace edgefd {
namespace {

using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;
using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

BioPtr MemBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
}

// Number of PEM certificates in `pem` (0 when it holds none or is malformed).
int CountCertificates(const std::string& pem) {
  BioPtr bio = MemBio(pem);
  int n = 0;
  while (X509Ptr cert{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &X509_free}) ++n;
  ERR_clear_error();
  return n;
}

bool HasPrivateKey(const std::string& pem) {
  BioPtr bio = MemBio(pem);
  KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  ERR_clear_error();
  return key != nullptr;
}

std::string TrimToken(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

class CpprestTransport final : public ApiTransport {
 public:
  CpprestTransport(KubeConfig config, web::http::client::http_client_config client_config)
      : config_(std::move(config)), client_(config_.server, client_config) {}

  Result<ApiResponse> Send(std::string_view method, const std::string& path,
                           const std::string& body, std::string_view content_type) override {
    std::string token = config_.token;
    if (!config_.token_file.empty()) {
      // Re-read every time: the kubelet rotates projected service-account tokens.
      std::ifstream in(config_.token_file);
      if (!in)
        return Error{config_.source + ": token file " + config_.token_file.string() +
                     " cannot be read"};
      std::ostringstream ss;
      ss << in.rdbuf();
      token = TrimToken(ss.str());
    }
    try {
      web::http::http_request request{web::http::method(method)};
      request.set_request_uri(path);
      request.headers().add("Accept", "application/json");
      request.headers().add("User-Agent", "edgefd-labeller/" + std::string(Version()));
      if (!token.empty()) request.headers().add("Authorization", "Bearer " + token);
      if (!body.empty()) request.set_body(body, std::string(content_type));
      web::http::http_response response = client_.request(request).get();
      ApiResponse out;
      out.status = response.status_code();
      out.body = response.extract_utf8string(true).get();
      auto it = response.headers().find("Retry-After");
      if (it != response.headers().end()) {
        long seconds = 0;
        const std::string& v = it->second;
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), seconds);
        if (ec == std::errc() && seconds > 0) out.retry_after = std::chrono::seconds(seconds);
      }
      return out;
    } catch (const std::exception& e) {
      return Error{config_.server + ": " + std::string(method) + " " + path +
                   " failed: " + e.what()};
    }
  }

 private:
  KubeConfig config_;
  web::http::client::http_client client_;
};

}  // namespace

void LimitHttpThreads(size_t threads) {
  try {
    crossplat::threadpool::initialize_with_threads(threads);
  } catch (const std::exception&) {
    // Already initialised (a client was made first); the default pool stays.
  }
}

Result<std::unique_ptr<ApiTransport>> MakeKubeClient(const KubeConfig& config) {
  const std::string where = config.source.empty() ? config.server : config.source;
  if (!config.ca_pem.empty() && CountCertificates(config.ca_pem) == 0) {
    return Error{where + ": certificate authority is not a PEM certificate"};
  }
  if (!config.client_cert_pem.empty()) {
    if (CountCertificates(config.client_cert_pem) == 0) {
      return Error{where + ": client certificate is not a PEM certificate"};
    }
    if (!HasPrivateKey(config.client_key_pem)) {
      return Error{where + ": client key is not a PEM private key"};
    }
  }
  try {
    web::http::client::http_client_config client_config;
    client_config.set_timeout(config.timeout);
    client_config.set_validate_certificates(!config.insecure_skip_tls_verify);
    std::string ca = config.ca_pem;
    std::string cert = config.client_cert_pem;
    std::string key = config.client_key_pem;
    client_config.set_ssl_context_callback([ca, cert, key](boost::asio::ssl::context& ctx) {
      if (!ca.empty()) {
        // Trust exactly the cluster's CA, as client-go does: cpprestsdk has already loaded
        // the system bundle, which would let any public CA vouch for the API server.
        SSL_CTX_set_cert_store(ctx.native_handle(), X509_STORE_new());
        ctx.add_certificate_authority(boost::asio::buffer(ca));
      }
      if (!cert.empty()) {
        ctx.use_certificate_chain(boost::asio::buffer(cert));
        ctx.use_private_key(boost::asio::buffer(key), boost::asio::ssl::context::pem);
      }
    });
    return std::unique_ptr<ApiTransport>(std::make_unique<CpprestTransport>(config, client_config));
  } catch (const std::exception& e) {
    return Error{where + ": server '" + config.server + "': " + e.what()};
  }
}

}  // namespace edgefd
