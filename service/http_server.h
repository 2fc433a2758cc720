// http_server.h: a small HTTP/1.1 server for operational endpoints
// (/metrics, /healthz), on GNU libmicrohttpd.
//
// Why libmicrohttpd: prometheus-cpp's civetweb exposer cannot start its
// threads next to Debian's LibTorch (fixed 100 KiB stacks vs. static TLS),
// and cpp-httplib serves one connection per pool thread, so 8 clients that
// trickle one header byte every 2 s took every thread and made /metrics
// unreachable (issue 12). libmicrohttpd multiplexes every connection on one
// epoll thread: a slow client costs a socket, not a thread. Bounds: at most
// `max_connections` connections (`per_ip_connections` from one address),
// each closed after `idle_timeout_s` without progress, request headers
// limited to the connection memory (32 KiB). Only GET and HEAD are served;
// request bodies are refused.
// Thread-safety: handlers run on the server's thread, one at a time; they
// must be thread-safe with respect to the rest of the program.
#ifndef DIFFRANK_SERVICE_HTTP_SERVER_H_
#define DIFFRANK_SERVICE_HTTP_SERVER_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

struct MHD_Daemon;

namespace diffrank::service {

struct HttpRequest {
  std::string path;
  std::optional<std::string> authorization;  // the Authorization header
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
};

class HttpServer {
 public:
  // Start listens on `host_port` ("127.0.0.1:9464", "[::1]:0", "0.0.0.0:80";
  // port 0 = any free port) and serves `routes` (exact paths).
  // InvalidArgument for a malformed address, Unavailable when it cannot bind.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      const std::string& host_port, std::map<std::string, HttpHandler> routes,
      HttpServerOptions options = {});
  ~HttpServer();  // stops listening and closes every connection
  int port() const { return port_; }

 private:
  HttpServer() = default;
  std::map<std::string, HttpHandler> routes_;
  MHD_Daemon* daemon_ = nullptr;
  int port_ = 0;
  friend struct HttpServerAccess;
};

}  // namespace diffrank::service

#endif  // DIFFRANK_SERVICE_HTTP_SERVER_H_
