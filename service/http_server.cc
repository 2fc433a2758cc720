// http_server.cc: the libmicrohttpd adapter (see http_server.h).
#include "service/http_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace diffrank::service {

struct HttpServerAccess {
  static MHD_Result Handle(void* cls, MHD_Connection* conn, const char* url,
                           const char* method, const char* /*version*/,
                           const char* /*upload_data*/,
                           size_t* upload_data_size, void** con_cls) {
    auto* self = static_cast<HttpServer*>(cls);
    HttpResponse out;
    const bool get = std::strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
                     std::strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (*con_cls == nullptr) {
      *con_cls = self;  // first call: headers are in
      if (get) {
        // fall through and answer now
      } else {
        out = {405, "text/plain; charset=utf-8", "only GET and HEAD\n"};
        return Queue(conn, out, /*allow=*/true);
      }
    } else if (*upload_data_size != 0) {
      *upload_data_size = 0;  // a body on GET: ignored
      return MHD_YES;
    }
    auto it = self->routes_.find(url);
    if (it == self->routes_.end()) {
      out = {404, "text/plain; charset=utf-8", "not found\n"};
    } else {
      HttpRequest req;
      req.path = url;
      if (const char* a = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                      "Authorization")) {
        req.authorization = a;
      }
      out = it->second(req);
    }
    return Queue(conn, out, /*allow=*/false);
  }

  static MHD_Result Queue(MHD_Connection* conn, const HttpResponse& r,
                          bool allow) {
    MHD_Response* resp = MHD_create_response_from_buffer(
        r.body.size(), const_cast<char*>(r.body.data()), MHD_RESPMEM_MUST_COPY);
    if (resp == nullptr) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", r.content_type.c_str());
    if (allow) MHD_add_response_header(resp, "Allow", "GET, HEAD");
    if (r.status == 401) {
      MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
    }
    const MHD_Result ok = MHD_queue_response(conn, r.status, resp);
    MHD_destroy_response(resp);
    return ok;
  }
};

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    const std::string& host_port, std::map<std::string, HttpHandler> routes,
    HttpServerOptions options) {
  const size_t colon = host_port.rfind(':');
  int port = -1;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(host_port.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("must be host:port, got \"", host_port, "\""));
  }
  std::string host = host_port.substr(0, colon);
  if (host.size() > 1 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "localhost") host = "127.0.0.1";
  sockaddr_storage addr{};
  unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD;
  if (host.empty()) host = "0.0.0.0";
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    flags |= MHD_USE_IPv6;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("host \"", host,
                     "\" must be a numeric IPv4/IPv6 address or localhost"));
  }
  std::unique_ptr<HttpServer> s(new HttpServer());
  s->routes_ = std::move(routes);
  s->daemon_ =
      MHD_start_daemon(flags, static_cast<uint16_t>(port), nullptr, nullptr,
                       &HttpServerAccess::Handle, s.get(), MHD_OPTION_SOCK_ADDR,
                       &addr, MHD_OPTION_CONNECTION_LIMIT,
                       static_cast<unsigned>(options.max_connections),
                       MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                       static_cast<unsigned>(options.per_ip_connections),
                       MHD_OPTION_CONNECTION_TIMEOUT,
                       static_cast<unsigned>(options.idle_timeout_s),
                       MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                       static_cast<size_t>(32 * 1024), MHD_OPTION_END);
  if (s->daemon_ == nullptr) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", host_port, " (in use or not a local address)"));
  }
  const MHD_DaemonInfo* info =
      MHD_get_daemon_info(s->daemon_, MHD_DAEMON_INFO_BIND_PORT);
  s->port_ = info ? info->port : port;
  return s;
}

HttpServer::~HttpServer() {
  if (daemon_) MHD_stop_daemon(daemon_);
}

}  // namespace diffrank::service
