// HttpFrontDoor: the router's OpenAI-compatible HTTP API (issue 12), an adapter over FrontDoorSession
// like the gRPC reactor.
//
//   POST /v1/completions, POST /v1/chat/completions   streaming (server-sent events ending with
//                                                      "data: [DONE]") or not; router/openai_api.h
//   GET  /v1/models                                    the served model
//   GET  /health                                       200 when a prefill and a decode worker are
//                                                      healthy, else 503
//   GET  /metrics                                      the router's Prometheus metrics
// Errors are OpenAI's JSON error object with the HTTP status of router/openai_api.h. A client that
// disconnects (while streaming or while waiting for a whole response) cancels its request, which frees
// its KV on the workers.
//
// With options.tls: HTTPS only (Asio's OpenSSL streams), the same certificate as the gRPC port; a
// client that fails the handshake (plaintext, no or an untrusted client certificate) is disconnected.
//
// Asynchronous I/O (Boost.Asio / Beast) on a few threads: a connection costs a socket and a small
// object, not a thread, so hundreds of concurrent streams are cheap. HTTP/1.1 keep-alive; one request
// in flight per connection (a pipelined request waits for the previous response).
//
// Thread safety: Start/Stop from one thread; everything else runs on the I/O threads and the
// sessions' callback threads, synchronised per connection by an Asio strand.
#ifndef TANDEM_ROUTER_HTTP_FRONT_DOOR_H_
#define TANDEM_ROUTER_HTTP_FRONT_DOOR_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/metrics.h"
#include "nlohmann/json.hpp"
#include "router/router_state.h"
#include "server/server_tls.h"

namespace tandem::router {

// Renders a chat (OpenAI `messages`) into the prompt text the model expects, with the generation
// prompt appended; InvalidArgument with the template's message when it refuses the conversation.
using ChatRenderer = std::function<absl::StatusOr<std::string>(const nlohmann::ordered_json& messages)>;

struct HttpFrontDoorOptions {
  std::string host = "127.0.0.1";
  int port = 0;                                   // 0: any free port
  int threads = 2;                                // I/O threads
  int max_connections = 4096;                     // beyond: the new connection gets 503 and is closed
  int64_t max_body_bytes = int64_t{8} << 20;
  absl::Duration idle_timeout = absl::Seconds(120);  // an idle keep-alive connection is closed
  ChatRenderer render_chat;                       // null: /v1/chat/completions answers 400
  const MetricsRegistry* metrics = nullptr;       // null: /metrics answers 404
  std::optional<ServerTls> tls;                   // HTTPS (TLS 1.2+); with client_ca_pem, mutual TLS
};

class HttpFrontDoor {
 public:
  // Binds and starts serving; Unavailable when the address cannot be bound, InvalidArgument when
  // OpenSSL refuses a PEM of options.tls.
  static absl::StatusOr<std::unique_ptr<HttpFrontDoor>> Start(RouterState& state, HttpFrontDoorOptions options);
  ~HttpFrontDoor();
  HttpFrontDoor(const HttpFrontDoor&) = delete;
  HttpFrontDoor& operator=(const HttpFrontDoor&) = delete;

  int port() const;
  std::string address() const;
  // Stops accepting connections; requests that still arrive on open connections get 503.
  void StopAccepting();
  // Stops accepting and closes idle connections; requests in flight are cancelled by the router's
  // shutdown (RouterState::CancelAllAndWait), and their connections close once answered. Then the
  // I/O threads are joined. Idempotent.
  void Stop();

  class Impl;

 private:
  explicit HttpFrontDoor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tandem::router

#endif  // TANDEM_ROUTER_HTTP_FRONT_DOOR_H_
