// http_server.h: a small HTTP/1.1 server on GNU libmicrohttpd, for the
// operational endpoints (/metrics, /healthz) and the HTTP/JSON API front
// (service/http_api.h).
//
// Why libmicrohttpd: prometheus-cpp's civetweb exposer cannot start its
// threads next to Debian's LibTorch (fixed 100 KiB stacks vs. static TLS),
// and cpp-httplib serves one connection per pool thread, so 8 clients that
// trickle one header byte every 2 s took every thread and made /metrics
// unreachable (issue 12). libmicrohttpd multiplexes every connection on two
// epoll threads: a slow client costs a socket, not a thread. Bounds: at most
// `max_connections` connections (`per_ip_connections` from one address),
// each closed after `idle_timeout_s` without progress, request headers
// limited to the connection memory (32 KiB). By default only GET and HEAD
// are served and request bodies are refused; with max_body_bytes > 0 any
// method is passed on with its body (a larger body is answered 413 without
// reading it into memory).
// Thread-safety: two I/O threads read requests and write responses; a
// complete request is handed to a pool of `threads` handler threads (the
// connection is suspended meanwhile), so handlers run concurrently when
// threads > 1 and must be thread-safe. A blocking handler delays only its
// own connection.
#ifndef DIFFRANK_SERVICE_HTTP_SERVER_H_
#define DIFFRANK_SERVICE_HTTP_SERVER_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "service/worker_pool.h"

struct MHD_Daemon;

namespace diffrank::service {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;
  std::optional<std::string> authorization;  // the Authorization header
  // Request headers by lower-case name (the last value when repeated).
  std::map<std::string, std::string> headers;
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  int max_connections = 256;
  int per_ip_connections = 64;
  int idle_timeout_s = 10;
  size_t max_body_bytes = 0;  // 0: GET/HEAD only, bodies refused
  int threads = 1;            // handler threads (the pool)
  // PEM certificate chain and key: serve HTTPS (GnuTLS) when both are set.
  std::string tls_cert_pem, tls_key_pem;
  // PEM CA certificates (with TLS only): mutual TLS. Every client must
  // present a certificate that chains to one of them, checked in the TLS
  // handshake as the gRPC port does (no certificate, or an untrusted one,
  // fails the handshake; no request reaches a handler).
  std::string tls_client_ca_pem;
  // Serves paths no route matches (when set); else 404.
  HttpHandler fallback;
  // Called with the status of every answer (metrics), from I/O threads.
  std::function<void(int status)> on_response;
};

class HttpServer {
 public:
  // Start listens on `host_port` ("127.0.0.1:9464", "[::1]:0", "0.0.0.0:80";
  // port 0 = any free port) and serves `routes` (exact paths).
  // InvalidArgument for a malformed address, Unavailable when it cannot bind.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      const std::string& host_port, std::map<std::string, HttpHandler> routes,
      HttpServerOptions options = {});
  // Stops accepting, lets every running handler finish and its answer reach
  // the client (answers close their connections from then on; idle
  // connections are waited for at most 2 s), then closes the rest.
  ~HttpServer();
  int port() const { return port_; }

 private:
  HttpServer() = default;
  std::map<std::string, HttpHandler> routes_;
  HttpServerOptions options_;
  std::unique_ptr<WorkerPool> handlers_;  // runs the handlers
  MHD_Daemon* daemon_ = nullptr;
  int port_ = 0;
  // Set if a TLS session could not be switched to verify client certificates
  // (mutual TLS): every request is then refused (fail closed).
  std::atomic<bool> unverifiable_{false};
  std::atomic<bool> stopping_{false};  // set by the destructor (drain)
  friend struct HttpServerAccess;
};

}  // namespace diffrank::service

#endif  // DIFFRANK_SERVICE_HTTP_SERVER_H_
