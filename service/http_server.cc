// http_server.cc: the libmicrohttpd adapter (see http_server.h).
#include "service/http_server.h"

#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "service/tls_pem.h"

namespace diffrank::service {

// libmicrohttpd's I/O threads (each with its own epoll set): they only read
// requests and write responses; handlers run on the handler pool.
constexpr unsigned kIoThreads = 2;

// Pending is one request being received (MHD's per-request pointer).
struct HttpPending {
  std::string body;
  bool too_large = false;
  // Set by a handler thread before it resumes the suspended connection.
  std::optional<HttpResponse> response;
};

struct HttpServerAccess {
  static MHD_Result CollectHeader(void* cls, MHD_ValueKind, const char* key,
                                  const char* value) {
    auto* headers = static_cast<std::map<std::string, std::string>*>(cls);
    std::string k = key;
    for (char& c : k) c = static_cast<char>(std::tolower(c));
    (*headers)[k] = value ? value : "";
    return MHD_YES;
  }

  // Mutual TLS: libmicrohttpd only *requests* a client certificate when it
  // has a trust list (MHD_OPTION_HTTPS_MEM_TRUST) and leaves verification to
  // the application. Each new connection's GnuTLS session (set up, handshake
  // not started) is switched to *require* one and to verify it against the
  // trust list during the handshake, so an unauthenticated client never
  // gets a request through, as on the gRPC port.
  static void ConnectionStarted(void* cls, MHD_Connection* conn, void**,
                                MHD_ConnectionNotificationCode code) {
    auto* self = static_cast<HttpServer*>(cls);
    if (code != MHD_CONNECTION_NOTIFY_STARTED ||
        self->options_.tls_client_ca_pem.empty()) {
      return;
    }
    const MHD_ConnectionInfo* info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (info == nullptr || info->tls_session == nullptr) {
      // Cannot happen with MHD_USE_TLS; refuse rather than serve unverified.
      self->unverifiable_.store(true);
      return;
    }
    auto session = static_cast<gnutls_session_t>(info->tls_session);
    gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUIRE);
    gnutls_session_set_verify_cert(session, /*hostname=*/nullptr, 0);
  }

  static void Completed(void*, MHD_Connection*, void** con_cls,
                        MHD_RequestTerminationCode) {
    delete static_cast<HttpPending*>(*con_cls);
    *con_cls = nullptr;
  }

  static MHD_Result Handle(void* cls, MHD_Connection* conn, const char* url,
                           const char* method, const char* /*version*/,
                           const char* upload_data, size_t* upload_data_size,
                           void** con_cls) {
    auto* self = static_cast<HttpServer*>(cls);
    HttpResponse out;
    if (self->unverifiable_.load()) {
      out = {503, "text/plain; charset=utf-8",
             "mutual TLS: the client certificate cannot be verified\n"};
      return Queue(self, conn, out, /*allow=*/false);
    }
    const bool get = std::strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
                     std::strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    const size_t max_body = self->options_.max_body_bytes;
    if (*con_cls == nullptr) {
      *con_cls = new HttpPending();  // first call: headers are in
      if (!get && max_body == 0) {
        out = {405, "text/plain; charset=utf-8", "only GET and HEAD\n"};
        return Queue(self, conn, out, /*allow=*/true);
      }
      if (!get) {
        // A declared body over the limit is refused before it is read.
        const char* cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     "Content-Length");
        uint64_t n = 0;
        if (cl != nullptr && absl::SimpleAtoi(cl, &n) && n > max_body) {
          static_cast<HttpPending*>(*con_cls)->too_large = true;
        }
        return MHD_YES;  // the body (if any) comes in the next calls
      }
    }
    auto* pending = static_cast<HttpPending*>(*con_cls);
    if (pending->response) {  // resumed: a handler thread answered
      return Queue(self, conn, *pending->response, /*allow=*/false);
    }
    if (*upload_data_size != 0) {
      if (!get && !pending->too_large) {
        if (pending->body.size() + *upload_data_size > max_body) {
          pending->too_large = true;
          pending->body.clear();
          pending->body.shrink_to_fit();
        } else {
          pending->body.append(upload_data, *upload_data_size);
        }
      }
      *upload_data_size = 0;  // a body on GET: ignored
      return MHD_YES;
    }
    if (pending->too_large) {
      out = {413, "application/json",
             absl::StrCat(R"js({"error":{"code":"RESOURCE_EXHAUSTED",)js",
                          R"js("type":"invalid_request_error","message":)js",
                          R"js("the request body is over )js", max_body,
                          R"js( bytes (limits.max_request_bytes)"}})js", "\n")};
      return Queue(self, conn, out, /*allow=*/false);
    }
    auto it = self->routes_.find(url);
    const HttpHandler* handler = it != self->routes_.end() ? &it->second
                                 : self->options_.fallback
                                     ? &self->options_.fallback
                                     : nullptr;
    if (handler == nullptr) {
      out = {404, "text/plain; charset=utf-8", "not found\n"};
    } else {
      HttpRequest req;
      req.method = method;
      req.path = url;
      if (const char* a = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                      "Authorization")) {
        req.authorization = a;
      }
      MHD_get_connection_values(conn, MHD_HEADER_KIND, &CollectHeader,
                                &req.headers);
      req.body = std::move(pending->body);
      // The handler runs on the handler pool while this I/O thread goes on
      // serving other connections: a slow call never holds up a request of
      // another connection (with handlers on the I/O threads, two
      // keep-alive connections that share a thread waited for each other).
      MHD_suspend_connection(conn);
      const bool queued = self->handlers_->TrySubmit(
          [handler, pending, conn, req = std::move(req)] {
            pending->response = (*handler)(req);
            MHD_resume_connection(conn);
          });
      if (!queued) {  // stopping
        pending->response = HttpResponse{503, "text/plain; charset=utf-8",
                                         "the server is stopping\n"};
        MHD_resume_connection(conn);
      }
      return MHD_YES;
    }
    return Queue(self, conn, out, /*allow=*/false);
  }

  static MHD_Result Queue(const HttpServer* self, MHD_Connection* conn,
                          const HttpResponse& r, bool allow) {
    MHD_Response* resp = MHD_create_response_from_buffer(
        r.body.size(), const_cast<char*>(r.body.data()), MHD_RESPMEM_MUST_COPY);
    if (resp == nullptr) return MHD_NO;
    if (self->options_.on_response) self->options_.on_response(r.status);
    MHD_add_response_header(resp, "Content-Type", r.content_type.c_str());
    if (allow) MHD_add_response_header(resp, "Allow", "GET, HEAD");
    if (r.status == 401) {
      MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
    }
    if (self->stopping_.load()) {  // draining: the client reconnects elsewhere
      MHD_add_response_header(resp, "Connection", "close");
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
  unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME;
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
  s->options_ = options;
  // At most one request per connection is in a handler (HTTP/1.1 without
  // pipelining), so the queue never refuses below max_connections.
  s->handlers_ = std::make_unique<WorkerPool>(std::max(1, options.threads),
                                              options.max_connections);
  const bool tls =
      !options.tls_cert_pem.empty() && !options.tls_key_pem.empty();
  if (tls) {
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
      return absl::UnavailableError("this libmicrohttpd has no TLS support");
    }
    flags |= MHD_USE_TLS;
  } else if (!options.tls_client_ca_pem.empty()) {
    return absl::InvalidArgumentError(
        "mutual TLS needs a certificate and key (TLS) as well");
  }
  const bool mtls = tls && !options.tls_client_ca_pem.empty();
  if (tls) {
    if (absl::Status st =
            CheckPemKeyPair(options.tls_cert_pem, options.tls_key_pem);
        !st.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("TLS certificate/key: ", st.message()));
    }
  }
  if (mtls) {
    if (absl::Status st = CheckPemCaBundle(options.tls_client_ca_pem);
        !st.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("TLS client CA: ", st.message()));
    }
  }
  s->daemon_ = MHD_start_daemon(
      flags, static_cast<uint16_t>(port), nullptr, nullptr,
      &HttpServerAccess::Handle, s.get(), MHD_OPTION_SOCK_ADDR, &addr,
      MHD_OPTION_CONNECTION_LIMIT,
      static_cast<unsigned>(options.max_connections),
      MHD_OPTION_PER_IP_CONNECTION_LIMIT,
      static_cast<unsigned>(options.per_ip_connections),
      MHD_OPTION_CONNECTION_TIMEOUT,
      static_cast<unsigned>(options.idle_timeout_s),
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, static_cast<size_t>(32 * 1024),
      MHD_OPTION_NOTIFY_COMPLETED, &HttpServerAccess::Completed, nullptr,
      MHD_OPTION_NOTIFY_CONNECTION, &HttpServerAccess::ConnectionStarted,
      s.get(), MHD_OPTION_THREAD_POOL_SIZE, kIoThreads,
      // TLS: the key and certificate, then the client CAs for mutual TLS
      // (the list ends early without them).
      tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END,
      s->options_.tls_key_pem.c_str(), MHD_OPTION_HTTPS_MEM_CERT,
      s->options_.tls_cert_pem.c_str(),
      mtls ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END,
      s->options_.tls_client_ca_pem.c_str(), MHD_OPTION_END);
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
  if (daemon_) {
    stopping_.store(true);  // answers from now on close the connection
    // No new connections: libmicrohttpd stops accepting and hands the
    // listening socket back; closing it refuses new clients at once (left
    // open, their connections would wait in the backlog).
    const MHD_socket listener = MHD_quiesce_daemon(daemon_);
    if (listener != MHD_INVALID_SOCKET) close(listener);
    // Every queued or running handler finishes and resumes its connection
    // (libmicrohttpd must not stop with connections suspended).
    handlers_->Shutdown();
    // Let the answers just given reach their clients: wait (at most 2 s, for
    // idle keep-alive connections) until every connection has closed.
    for (int i = 0; i < 200; ++i) {
      const MHD_DaemonInfo* info =
          MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
      if (info == nullptr || info->num_connections == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    MHD_stop_daemon(daemon_);
  }
}

}  // namespace diffrank::service
