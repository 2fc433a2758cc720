// http_server_test.cc: the operational HTTP endpoint on a real socket:
// routes, methods, and clients that trickle bytes or never send (issue 12:
// 8 such sockets made /metrics unreachable with cpp-httplib).
#include "service/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace diffrank::service {
namespace {

int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Request sends `raw` and reads until the server closes or `timeout_ms`.
std::string Request(int port, const std::string& raw, int timeout_ms = 3000) {
  const int fd = Connect(port);
  if (fd < 0) return "";
  send(fd, raw.data(), raw.size(), MSG_NOSIGNAL);
  std::string out;
  char buf[4096];
  pollfd p{fd, POLLIN, 0};
  while (poll(&p, 1, timeout_ms) > 0) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, n);
  }
  close(fd);
  return out;
}

std::unique_ptr<HttpServer> StartServer(HttpServerOptions o = {}) {
  std::map<std::string, HttpHandler> routes;
  routes["/metrics"] = [](const HttpRequest& r) {
    if (r.authorization && *r.authorization != "Bearer good") {
      return HttpResponse{401, "text/plain", "no\n"};
    }
    return HttpResponse{200, "text/plain", "diffrank_up 1\n"};
  };
  auto s = HttpServer::Start("127.0.0.1:0", std::move(routes), o);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *std::move(s) : nullptr;
}

const char kGet[] =
    "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

TEST(HttpServer, RoutesMethodsAndStatus) {
  auto s = StartServer();
  ASSERT_NE(s, nullptr);
  ASSERT_GT(s->port(), 0);
  std::string r = Request(s->port(), kGet);
  EXPECT_TRUE(absl::StartsWith(r, "HTTP/1.1 200")) << r;
  EXPECT_TRUE(absl::StrContains(r, "diffrank_up 1")) << r;
  r = Request(s->port(), "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(r, "HTTP/1.1 404")) << r;
  r = Request(s->port(),
              "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n"
              "abc");
  EXPECT_TRUE(absl::StartsWith(r, "HTTP/1.1 405")) << r;
  r = Request(
      s->port(),
      "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer bad\r\n"
      "Connection: close\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(r, "HTTP/1.1 401")) << r;
  EXPECT_TRUE(absl::StrContains(r, "WWW-Authenticate: Bearer")) << r;
  // Garbage instead of HTTP: an error answer or a close, and the server
  // keeps serving.
  Request(s->port(), std::string(5000, '\x01') + "\r\n\r\n", 1000);
  EXPECT_TRUE(absl::StartsWith(Request(s->port(), kGet), "HTTP/1.1 200"));
}

TEST(HttpServer, SlowClientsDoNotBlockScrapes) {
  auto s = StartServer();
  ASSERT_NE(s, nullptr);
  // 48 connections that trickle a header byte at a time (6x the probe's).
  std::vector<int> slow;
  for (int i = 0; i < 48; ++i) {
    const int fd = Connect(s->port());
    ASSERT_GE(fd, 0);
    send(fd, "G", 1, MSG_NOSIGNAL);
    slow.push_back(fd);
  }
  for (int round = 0; round < 3; ++round) {
    for (int fd : slow) send(fd, "E", 1, MSG_NOSIGNAL);
    const auto t0 = std::chrono::steady_clock::now();
    const std::string r = Request(s->port(), kGet, 2000);
    const double ms = std::chrono::duration<double, std::milli>(
                          std::chrono::steady_clock::now() - t0)
                          .count();
    EXPECT_TRUE(absl::StartsWith(r, "HTTP/1.1 200")) << r;
    EXPECT_LT(ms, 1000) << "scrape took " << ms << " ms";
  }
  for (int fd : slow) close(fd);
}

TEST(HttpServer, IdleConnectionsAreClosed) {
  HttpServerOptions o;
  o.idle_timeout_s = 1;
  auto s = StartServer(o);
  ASSERT_NE(s, nullptr);
  const int fd = Connect(s->port());
  ASSERT_GE(fd, 0);
  send(fd, "GET /met", 8, MSG_NOSIGNAL);
  pollfd p{fd, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1);  // closed (or answered) within ~1 s
  char c;
  EXPECT_LE(recv(fd, &c, 1, 0), 0);
  close(fd);
}

TEST(HttpServer, BadAddressesAreInvalidArgument) {
  for (const char* a : {"nohost", "1.2.3.4:99999", "example.com:80", ":x"}) {
    EXPECT_EQ(HttpServer::Start(a, {}).status().code(),
              absl::StatusCode::kInvalidArgument)
        << a;
  }
  auto first = StartServer();
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(HttpServer::Start(absl::StrCat("127.0.0.1:", first->port()), {})
                .status()
                .code(),
            absl::StatusCode::kUnavailable);
}

// Gate holds the handlers that Pass through it until Release, counting how
// many are inside.
class Gate {
 public:
  ~Gate() { Release(); }
  HttpResponse Pass(const std::string& body) {
    std::unique_lock<std::mutex> l(mu_);
    ++inside_;
    cv_.notify_all();
    cv_.wait(l, [&] { return released_; });
    return HttpResponse{200, "text/plain", body};
  }
  bool WaitInside(int n) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, std::chrono::seconds(20),
                        [&] { return inside_ >= n; });
  }
  void Release() {
    {
      std::lock_guard<std::mutex> l(mu_);
      released_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int inside_ = 0;
  bool released_ = false;
};

TEST(HttpServer, ABlockedHandlerHoldsUpOnlyItsOwnConnection) {
  // Three calls block in their handler until released; a fourth connection
  // is answered meanwhile (handlers run on the pool, not the I/O threads).
  Gate gate;
  std::map<std::string, HttpHandler> routes;
  routes["/slow"] = [&](const HttpRequest&) { return gate.Pass("slow\n"); };
  routes["/fast"] = [](const HttpRequest&) {
    return HttpResponse{200, "text/plain", "fast\n"};
  };
  HttpServerOptions o;
  o.threads = 4;
  auto s = HttpServer::Start("127.0.0.1:0", std::move(routes), o);
  ASSERT_TRUE(s.ok()) << s.status();
  const int port = (*s)->port();
  std::vector<std::thread> slow;
  std::vector<std::string> answers(3);
  for (int i = 0; i < 3; ++i) {
    slow.emplace_back([&, i] {
      answers[i] = Request(
          port, "GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
          30000);
    });
  }
  ASSERT_TRUE(gate.WaitInside(3));
  const std::string fast = Request(
      port, "GET /fast HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  gate.Release();
  for (auto& t : slow) t.join();
  EXPECT_TRUE(absl::StrContains(fast, "fast")) << fast;
  for (const std::string& a : answers) {
    EXPECT_TRUE(absl::StrContains(a, "slow")) << a;
  }
}

TEST(HttpServer, StoppingLetsRunningCallsAnswer) {
  // A call is in its handler when the server is destroyed: the destructor
  // waits for it, and its answer reaches the client (Connection: close).
  Gate gate;
  std::map<std::string, HttpHandler> routes;
  routes["/slow"] = [&](const HttpRequest&) { return gate.Pass("finished\n"); };
  HttpServerOptions o;
  o.threads = 2;
  auto s = HttpServer::Start("127.0.0.1:0", std::move(routes), o);
  ASSERT_TRUE(s.ok()) << s.status();
  const int port = (*s)->port();
  std::string answer;
  std::thread client([&] {
    answer = Request(port,
                     "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n",  // keep-alive
                     30000);
  });
  ASSERT_TRUE(gate.WaitInside(1));
  std::thread stopper([&] { s->reset(); });
  // The stop has begun once new clients are refused (the listening socket
  // is closed at once, not left to fill its backlog).
  bool refused = false;
  for (int i = 0; i < 500 && !refused; ++i) {
    const int fd = Connect(port);
    refused = fd < 0;
    if (fd >= 0) close(fd);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(refused) << "new connections accepted while stopping";
  gate.Release();
  stopper.join();
  client.join();
  EXPECT_TRUE(absl::StartsWith(answer, "HTTP/1.1 200")) << answer;
  EXPECT_TRUE(absl::StrContains(answer, "finished")) << answer;
  EXPECT_TRUE(absl::StrContains(answer, "Connection: close")) << answer;
}

TEST(HttpServer, BadTlsMaterialIsNamedNotServed) {
  HttpServerOptions o;
  o.tls_client_ca_pem = "-----BEGIN CERTIFICATE-----";  // mTLS without TLS
  auto s = HttpServer::Start("127.0.0.1:0", {}, o);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.status().message(), "certificate and key"))
      << s.status();
  o.tls_cert_pem = "not a certificate";
  o.tls_key_pem = "not a key";
  s = HttpServer::Start("127.0.0.1:0", {}, o);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.status().message(), "not a PEM certificate"))
      << s.status();
}

}  // namespace
}  // namespace diffrank::service
