#include "router/http_front_door.h"

#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>

#include <atomic>
#include <deque>
#include <list>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "boost/asio.hpp"
#include "boost/beast/core.hpp"
#include "boost/asio/ssl.hpp"
#include "boost/beast/http.hpp"
#include "boost/beast/ssl.hpp"
#include "common/logging.h"
#include "router/front_door.h"
#include "router/openai_api.h"
#include "tokenizer/tokenizer.h"

namespace tandem::router {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

const char* Reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 499: return "Client Closed Request";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return status >= 500 ? "Internal Server Error" : "Error";
  }
}

// A whole response: status line, headers, body.
std::string WholeResponse(int status, absl::string_view content_type, absl::string_view body, bool keep_alive) {
  return absl::StrCat("HTTP/1.1 ", status, " ", Reason(status), "\r\nContent-Type: ", content_type,
                      "\r\nContent-Length: ", body.size(), "\r\nConnection: ", keep_alive ? "keep-alive" : "close",
                      "\r\n\r\n", body);
}

std::string JsonResponse(int status, absl::string_view body, bool keep_alive) {
  return WholeResponse(status, "application/json", body, keep_alive);
}

std::string ErrorResponse(const absl::Status& status, bool keep_alive) {
  return JsonResponse(HttpStatusFor(status), ErrorJson(status), keep_alive);
}

// The head of a server-sent-event stream (chunked).
std::string StreamHead(bool keep_alive) {
  return absl::StrCat("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n",
                      "Transfer-Encoding: chunked\r\nConnection: ", keep_alive ? "keep-alive" : "close", "\r\n\r\n");
}

// One server-sent event as one HTTP chunk.
std::string EventChunk(absl::string_view data) {
  const std::string event = absl::StrCat("data: ", data, "\n\n");
  return absl::StrCat(absl::StrFormat("%x", event.size()), "\r\n", event, "\r\n");
}

constexpr char kLastChunk[] = "0\r\n\r\n";

std::string RandomId(absl::string_view prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return absl::StrCat(prefix, absl::StrFormat("%016x%08x", rng(), static_cast<uint32_t>(rng())));
}

int64_t NowSeconds() { return absl::ToUnixSeconds(absl::Now()); }

// What an Exchange and the server need of a connection, whatever its stream (TCP, or TLS over TCP).
class ConnectionBase {
 public:
  virtual ~ConnectionBase() = default;
  // Any thread: queue bytes of the response in flight; `last` ends the exchange.
  virtual void Post(std::string bytes, bool last) = 0;
  // Any thread: close (router shutdown).
  virtual void Close() = 0;
};

// One generation request of a connection: the session's sink. It turns the session's events into the
// response's bytes and hands them to the connection's strand. Lives until the session delivered OnDone
// and the connection let go of it; holds the session (and so may cancel it) until then.
class Exchange final : public ResponseSink, public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(std::shared_ptr<ConnectionBase> connection, OpenAiRequest request, bool keep_alive)
      : connection_(std::move(connection)), request_(std::move(request)), keep_alive_(keep_alive) {
    ids_.id = RandomId(request_.chat ? "chatcmpl-" : "cmpl-");
    ids_.created = NowSeconds();
  }
  ~Exchange() override {
    if (session_ != nullptr) session_->Release();
  }

  void Begin(RouterState& state, const SessionContext& context) {
    tokenizer_ = &state.tokenizer();
    ids_.model = request_.model.empty() ? state.model().name : request_.model;
    deltas_.emplace(request_.chat, ids_);
    self_ = shared_from_this();
    session_ = FrontDoorSession::Start(state, request_.generate, context, this);
  }
  // From the connection's strand: the client is gone.
  void Cancel(const std::string& why) { session_->Cancel(why); }

  // ResponseSink: called one at a time by the session.
  void OnChunk(GenerateChunk chunk) override;
  void OnFinal(GenerateFinal final) override { final_ = std::move(final); }
  void OnDone(absl::Status status) override;

 private:
  std::string StartStreamIfNeeded();
  // The chosen tokens' texts and log probabilities of a chunk.
  TokenLogprobs LogprobsOf(const GenerateChunk& chunk) const;
  nlohmann::json LogprobsJson(const TokenLogprobs& lp);

  std::shared_ptr<ConnectionBase> connection_;
  const OpenAiRequest request_;
  const bool keep_alive_;
  ResponseIds ids_;
  std::optional<DeltaWriter> deltas_;
  const Tokenizer* tokenizer_ = nullptr;
  TokenLogprobs logprobs_;        // a whole response's, when asked for
  int64_t logprob_offset_ = 0;    // completion text bytes before the next token (completions)
  FrontDoorSession* session_ = nullptr;
  std::shared_ptr<Exchange> self_;  // until OnDone
  // Touched only by the session's (serialised) sink calls.
  bool stream_started_ = false;
  bool first_delta_ = true;
  std::string text_;
  std::optional<GenerateFinal> final_;
};

// Stream: beast::tcp_stream, or beast::ssl_stream<beast::tcp_stream> (HttpFrontDoorOptions::tls).
template <class Stream>
class Connection final : public ConnectionBase, public std::enable_shared_from_this<Connection<Stream>> {
 public:
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

  // `stream_args`: the accepted socket, and for TLS the server's SSL context.
  template <class... StreamArgs>
  explicit Connection(HttpFrontDoor::Impl& server, StreamArgs&&... stream_args);
  ~Connection() override;

  void Start() {
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] { self->Handshake(); });
  }
  void Post(std::string bytes, bool last) override {
    net::post(stream_.get_executor(), [self = this->shared_from_this(), bytes = std::move(bytes), last]() mutable {
      self->Queue(std::move(bytes));
      if (last) self->EndExchange();
    });
  }
  void Close() override {
    net::post(stream_.get_executor(), [self = this->shared_from_this()] {
      beast::error_code ignored;
      self->Tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
      self->Tcp().close();
    });
  }

 private:
  beast::tcp_stream& Tcp() { return beast::get_lowest_layer(stream_); }
  // TLS: the server handshake (bounded by the idle timeout), then the first request.
  void Handshake();
  void ReadRequest();
  void OnRequest(beast::error_code ec);
  void Handle(http::request<http::string_body>& request);
  void StartGeneration(absl::StatusOr<OpenAiRequest> parsed, bool keep_alive);
  void WatchForHangUp(uint64_t exchange);
  bool PeerHungUp();
  void Queue(std::string bytes);
  void WriteNext();
  void EndExchange();
  // After the last write of a connection that is not kept alive: TCP shutdown (no TLS close_notify:
  // every response is delimited by its length or its last chunk).
  void ShutDown();

  Stream stream_;
  HttpFrontDoor::Impl& server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::deque<std::string> out_;
  bool writing_ = false;
  bool close_when_written_ = false;
  bool read_when_written_ = false;
  std::string client_;  // the API key identity of the request being handled ("" without keys)
  bool closed_ = false;
  bool exchange_keep_alive_ = false;  // the generation request in flight asked for keep-alive
  std::shared_ptr<Exchange> exchange_;
  uint64_t exchange_count_ = 0;  // generation requests started: the hang-up watch's is the last one
  std::optional<net::steady_timer> recheck_;  // the hang-up watch's next look while data waits unread
};

}  // namespace

class HttpFrontDoor::Impl {
 public:
  Impl(RouterState& state, HttpFrontDoorOptions options)
      : state(state), options(std::move(options)), acceptor(ioc) {}

  // The TLS context of options.tls: InvalidArgument naming the PEM that OpenSSL refused.
  absl::Status SetUpTls() {
    if (!options.tls.has_value()) return absl::OkStatus();
    const ServerTls& tls = *options.tls;
    ssl.emplace(net::ssl::context::tls_server);
    ssl->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                     net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 | net::ssl::context::no_tlsv1_1);
    beast::error_code ec;
    ssl->use_certificate_chain(net::buffer(tls.cert_chain_pem), ec);
    if (ec) return absl::InvalidArgumentError(absl::StrCat("HTTP TLS: the certificate chain: ", ec.message()));
    ssl->use_private_key(net::buffer(tls.private_key_pem), net::ssl::context::pem, ec);
    if (ec) return absl::InvalidArgumentError(absl::StrCat("HTTP TLS: the private key: ", ec.message()));
    if (!tls.client_ca_pem.empty()) {
      ssl->add_certificate_authority(net::buffer(tls.client_ca_pem), ec);
      if (ec) return absl::InvalidArgumentError(absl::StrCat("HTTP TLS: the client CA: ", ec.message()));
      ssl->set_verify_mode(net::ssl::verify_peer | net::ssl::verify_fail_if_no_peer_cert);
    }
    return absl::OkStatus();
  }

  absl::Status Listen() {
    beast::error_code ec;
    const net::ip::address address = net::ip::make_address(options.host, ec);
    if (ec) return absl::InvalidArgumentError(absl::StrCat("--host ", options.host, ": ", ec.message()));
    const tcp::endpoint endpoint(address, static_cast<unsigned short>(options.port));
    acceptor.open(endpoint.protocol(), ec);
    // SO_REUSEADDR only (no SO_REUSEPORT): a second router on the same port fails to bind.
    if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      return absl::UnavailableError(absl::StrCat("HTTP: cannot listen on ", options.host, ":", options.port, ": ",
                                                 ec.message()));
    }
    port = acceptor.local_endpoint().port();
    return absl::OkStatus();
  }

  void Accept() {
    acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec == net::error::operation_aborted || stopping.load()) return;
      } else if (connections.load() >= options.max_connections) {
        beast::error_code ignored;
        if (!ssl.has_value()) {  // (a TLS client could not read a plaintext answer)
          const std::string busy = ErrorResponse(
              absl::UnavailableError(absl::StrCat("too many connections (", options.max_connections, ")")), false);
          net::write(socket, net::buffer(busy), ignored);
        }
        socket.close(ignored);
      } else if (ssl.has_value()) {
        Track(std::make_shared<Connection<beast::ssl_stream<beast::tcp_stream>>>(*this, std::move(socket), *ssl));
      } else {
        Track(std::make_shared<Connection<beast::tcp_stream>>(*this, std::move(socket)));
      }
      if (!stopping.load()) Accept();
    });
  }

  template <class C>
  void Track(std::shared_ptr<C> connection) {
    {
      std::lock_guard<std::mutex> lock(live_mu);
      live.remove_if([](const std::weak_ptr<ConnectionBase>& w) { return w.expired(); });
      live.push_back(connection);
    }
    connection->Start();
  }

  void StopAccepting() {
    if (stopping.exchange(true)) return;
    net::post(acceptor.get_executor(), [this] {
      beast::error_code ignored;
      acceptor.close(ignored);
    });
  }

  void Stop() {
    StopAccepting();
    {
      std::lock_guard<std::mutex> lock(live_mu);
      for (const std::weak_ptr<ConnectionBase>& w : live) {
        if (std::shared_ptr<ConnectionBase> c = w.lock()) c->Close();
      }
    }
    work.reset();
    // Give closing connections a moment, then stop the loop whatever is left.
    for (int i = 0; i < 100 && connections.load() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ioc.stop();
    for (std::thread& t : threads) {
      if (t.joinable()) t.join();
    }
    threads.clear();
  }

  RouterState& state;
  const HttpFrontDoorOptions options;
  net::io_context ioc;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work{ioc.get_executor()};
  tcp::acceptor acceptor;
  std::vector<std::thread> threads;
  std::atomic<int> connections{0};
  std::atomic<bool> stopping{false};
  int port = 0;
  std::mutex live_mu;
  std::list<std::weak_ptr<ConnectionBase>> live;
  std::optional<net::ssl::context> ssl;  // with options.tls
};

namespace {

template <class Stream>
template <class... StreamArgs>
Connection<Stream>::Connection(HttpFrontDoor::Impl& server, StreamArgs&&... stream_args)
    : stream_(std::forward<StreamArgs>(stream_args)...), server_(server) {
  server_.connections.fetch_add(1);
}

template <class Stream>
Connection<Stream>::~Connection() {
  server_.connections.fetch_sub(1);
}

template <class Stream>
void Connection<Stream>::Handshake() {
  if constexpr (kTls) {
    Tcp().expires_after(absl::ToChronoSeconds(server_.options.idle_timeout));
    stream_.async_handshake(net::ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code ec) {
      if (ec) {  // not TLS, an untrusted client certificate, a timeout: nothing to answer over
        self->ShutDown();
        return;
      }
      self->ReadRequest();
    });
  } else {
    ReadRequest();
  }
}

template <class Stream>
void Connection<Stream>::ShutDown() {
  beast::error_code ignored;
  Tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
  closed_ = true;
}

template <class Stream>
void Connection<Stream>::ReadRequest() {
  if (closed_) return;
  parser_.emplace();
  parser_->body_limit(static_cast<uint64_t>(server_.options.max_body_bytes));
  parser_->header_limit(64 * 1024);
  Tcp().expires_after(absl::ToChronoSeconds(server_.options.idle_timeout));
  http::async_read(stream_, buffer_, *parser_,
                   [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnRequest(ec); });
}

template <class Stream>
void Connection<Stream>::OnRequest(beast::error_code ec) {
  if (ec) {
    if (ec == http::error::body_limit) {
      close_when_written_ = true;
      Queue(ErrorResponse(absl::InvalidArgumentError(absl::StrCat("the request body exceeds ",
                                                                  server_.options.max_body_bytes, " bytes")),
                          false));
      return;
    }
    if (ec != http::error::end_of_stream && ec != beast::error::timeout && ec != net::error::operation_aborted &&
        ec != net::error::connection_reset && ec != net::error::eof && ec != net::ssl::error::stream_truncated) {
      close_when_written_ = true;
      Queue(ErrorResponse(absl::InvalidArgumentError(absl::StrCat("malformed HTTP request: ", ec.message())), false));
      return;
    }
    ShutDown();
    return;
  }
  http::request<http::string_body> request = parser_->release();
  Handle(request);
}

template <class Stream>
void Connection<Stream>::Handle(http::request<http::string_body>& request) {
  const bool keep_alive = request.keep_alive() && !server_.stopping.load();
  std::string target(request.target());
  if (const size_t q = target.find('?'); q != std::string::npos) target.resize(q);
  const auto method = request.method();
  auto respond = [&](std::string bytes) {
    if (keep_alive) {
      read_when_written_ = true;
    } else {
      close_when_written_ = true;
    }
    Queue(std::move(bytes));
  };
  RouterState& state = server_.state;
  if (server_.stopping.load()) {
    respond(ErrorResponse(absl::UnavailableError("the router is shutting down"), false));
    return;
  }
  if (absl::StartsWith(target, "/v1/")) {
    // Every OpenAI route needs the API key (when the router has any); /health and /metrics do not.
    const absl::string_view authorization(request[http::field::authorization].data(),
                                          request[http::field::authorization].size());
    const bool generation = target == "/v1/completions" || target == "/v1/chat/completions";
    absl::StatusOr<std::string> client = std::string();
    if (generation) {
      client = state.Authenticate(authorization);
    } else if (absl::Status s = state.api_keys().Check(authorization); !s.ok()) {
      client = s;
    }
    if (!client.ok()) {
      respond(ErrorResponse(client.status(), keep_alive));
      return;
    }
    client_ = *std::move(client);
  }
  if (target == "/v1/completions" || target == "/v1/chat/completions") {
    if (method != http::verb::post) {
      respond(JsonResponse(405, ErrorJson(absl::InvalidArgumentError(absl::StrCat(target, " takes POST"))), keep_alive));
      return;
    }
    const bool chat = target == "/v1/chat/completions";
    StartGeneration(chat ? ParseChatRequest(request.body()) : ParseCompletionRequest(request.body()), keep_alive);
    return;
  }
  if (method != http::verb::get && method != http::verb::head) {
    respond(JsonResponse(405, ErrorJson(absl::InvalidArgumentError(absl::StrCat(target, " takes GET"))), keep_alive));
    return;
  }
  if (target == "/v1/models") {
    respond(JsonResponse(200, ModelsJson(state.model().name, state.model().max_context, NowSeconds()), keep_alive));
  } else if (target == "/health") {
    const policy::ClusterSnapshot snapshot = state.registry().Snapshot();
    int prefill = 0, decode = 0;
    for (const auto& w : snapshot.prefill) prefill += w.healthy ? 1 : 0;
    for (const auto& w : snapshot.decode) decode += w.healthy ? 1 : 0;
    const std::string body = nlohmann::json{{"status", prefill > 0 && decode > 0 ? "ok" : "unavailable"},
                                            {"healthy_prefill_workers", prefill},
                                            {"healthy_decode_workers", decode}}
                                 .dump();
    respond(JsonResponse(prefill > 0 && decode > 0 ? 200 : 503, body, keep_alive));
  } else if (target == "/metrics" && server_.options.metrics != nullptr) {
    respond(WholeResponse(200, "text/plain; version=0.0.4", server_.options.metrics->Render(), keep_alive));
  } else {
    respond(ErrorResponse(absl::NotFoundError(absl::StrCat("no route ", target)), keep_alive));
  }
}

template <class Stream>
void Connection<Stream>::StartGeneration(absl::StatusOr<OpenAiRequest> parsed, bool keep_alive) {
  RouterState& state = server_.state;
  if (parsed.ok() && parsed->chat) {
    // Render the conversation and tokenize it here: the template writes the special tokens itself.
    absl::Status status;
    if (!server_.options.render_chat) {
      status = absl::InvalidArgumentError(absl::StrCat(
          "messages: the model '", state.model().name,
          "' has no chat template (tokenizer_config.json chat_template; the router's --chat-template overrides)"));
    } else {
      absl::StatusOr<std::string> prompt = server_.options.render_chat(parsed->messages);
      if (!prompt.ok()) {
        status = absl::InvalidArgumentError(absl::StrCat("messages: ", prompt.status().message()));
      } else if (static_cast<int64_t>(prompt->size()) > state.model().max_context * kMaxPromptBytesPerToken) {
        status = absl::InvalidArgumentError(absl::StrCat("messages: the conversation renders to ", prompt->size(),
                                                         " bytes, more than the context can hold"));
      } else {
        absl::StatusOr<std::vector<int32_t>> ids = state.tokenizer().Encode(*prompt, /*add_special_tokens=*/false);
        if (!ids.ok()) {
          status = absl::InvalidArgumentError(absl::StrCat("messages: ", ids.status().message()));
        } else {
          parsed->generate.mutable_prompt_token_ids()->mutable_ids()->Add(ids->begin(), ids->end());
        }
      }
    }
    if (!status.ok()) parsed = status;
  }
  if (!parsed.ok()) {
    if (keep_alive) {
      read_when_written_ = true;
    } else {
      close_when_written_ = true;
    }
    Queue(ErrorResponse(parsed.status(), keep_alive));
    return;
  }
  Tcp().expires_never();  // a long generation is not idleness
  exchange_keep_alive_ = keep_alive;
  exchange_ = std::make_shared<Exchange>(this->shared_from_this(), *std::move(parsed), keep_alive);
  SessionContext context;
  beast::error_code ec;
  const tcp::endpoint peer = Tcp().socket().remote_endpoint(ec);
  context.peer = ec ? "?" : absl::StrCat(peer.address().to_string(), ":", peer.port());
  context.api = "http";
  context.client = client_;
  WatchForHangUp(++exchange_count_);
  exchange_->Begin(state, context);
}

// While a request is in flight nothing is read; a readable socket then means the client hung up, or
// sent bytes that wait unread: a pipelined request, or over TLS maybe a close_notify alert (encrypted
// in TLS 1.3, so it cannot be told from data). Whether the peer closed is asked of the kernel
// (POLLRDHUP: it sees a FIN behind unread bytes); with bytes waiting, the watch looks again in 100 ms.
// The watch of an exchange that ended just stops: it is never cancelled, since cancelling the socket
// would cancel a write still in flight too.
template <class Stream>
void Connection<Stream>::WatchForHangUp(uint64_t exchange) {
  Tcp().socket().async_wait(tcp::socket::wait_read, [self = this->shared_from_this(), exchange](beast::error_code ec) {
    if (ec || self->exchange_ == nullptr || self->exchange_count_ != exchange) return;
    if (self->PeerHungUp()) {
      self->close_when_written_ = true;
      self->exchange_->Cancel("the HTTP client disconnected");
      return;
    }
    self->recheck_.emplace(self->stream_.get_executor(), std::chrono::milliseconds(100));
    self->recheck_->async_wait([self, exchange](beast::error_code timer_ec) {
      if (!timer_ec) self->WatchForHangUp(exchange);
    });
  });
}

template <class Stream>
bool Connection<Stream>::PeerHungUp() {
  pollfd p{};
  p.fd = Tcp().socket().native_handle();
  p.events = POLLIN | POLLRDHUP;
  if (::poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) return true;
  // Readable, no FIN flag: a read of 0 still means closed (kernels without POLLRDHUP for this socket).
  char byte;
  const ssize_t n = ::recv(p.fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

template <class Stream>
void Connection<Stream>::Queue(std::string bytes) {
  if (closed_) return;
  out_.push_back(std::move(bytes));
  if (!writing_) WriteNext();
}

template <class Stream>
void Connection<Stream>::WriteNext() {
  if (out_.empty()) {
    writing_ = false;
    if (exchange_ != nullptr) return;  // more of this response is coming
    if (close_when_written_) {
      ShutDown();
    } else if (read_when_written_) {
      read_when_written_ = false;
      ReadRequest();
    }
    return;
  }
  // Everything queued while the previous write was in flight goes out in one write.
  while (out_.size() > 1) {
    std::string next = std::move(out_[1]);
    out_.erase(out_.begin() + 1);
    out_.front() += next;
  }
  writing_ = true;
  net::async_write(stream_, net::buffer(out_.front()), [self = this->shared_from_this()](beast::error_code ec, size_t) {
    self->out_.pop_front();
    if (ec) {
      self->out_.clear();
      self->writing_ = false;
      self->closed_ = true;
      if (self->exchange_ != nullptr) self->exchange_->Cancel("the HTTP client stream broke");
      return;
    }
    self->WriteNext();
  });
}

// The exchange's last bytes are queued: read the next request once they are written (or close).
template <class Stream>
void Connection<Stream>::EndExchange() {
  if (exchange_ == nullptr) return;
  const bool keep_alive = exchange_keep_alive_ && !close_when_written_ && !server_.stopping.load();
  exchange_.reset();  // the hang-up watch stops at its next look
  if (recheck_.has_value()) recheck_->cancel();
  if (keep_alive) {
    read_when_written_ = true;
  } else {
    close_when_written_ = true;
  }
  if (!writing_) WriteNext();
}

std::string Exchange::StartStreamIfNeeded() {
  if (stream_started_) return "";
  stream_started_ = true;
  return StreamHead(keep_alive_);
}

TokenLogprobs Exchange::LogprobsOf(const GenerateChunk& chunk) const {
  TokenLogprobs lp;
  for (size_t i = 0; i < chunk.token_ids.size(); ++i) {
    absl::StatusOr<std::string> token = tokenizer_->Decode({chunk.token_ids[i]}, /*skip_special_tokens=*/false);
    lp.tokens.push_back(token.ok() ? *std::move(token) : std::string());
    lp.logprobs.push_back(i < chunk.logprobs.size() ? chunk.logprobs[i] : 0.0f);
  }
  return lp;
}

nlohmann::json Exchange::LogprobsJson(const TokenLogprobs& lp) {
  if (request_.chat) return ChatLogprobsJson(lp);
  nlohmann::json json = CompletionLogprobsJson(lp, logprob_offset_);
  for (const std::string& token : lp.tokens) logprob_offset_ += static_cast<int64_t>(token.size());
  return json;
}

void Exchange::OnChunk(GenerateChunk chunk) {
  const bool logprobs = request_.generate.logprobs();
  if (!request_.stream) {
    text_ += chunk.text;
    if (logprobs) {
      TokenLogprobs lp = LogprobsOf(chunk);
      logprobs_.tokens.insert(logprobs_.tokens.end(), lp.tokens.begin(), lp.tokens.end());
      logprobs_.logprobs.insert(logprobs_.logprobs.end(), lp.logprobs.begin(), lp.logprobs.end());
    }
    return;
  }
  std::string bytes = StartStreamIfNeeded();
  if (logprobs) {
    // The slower object path: every chunk carries its tokens' log probabilities.
    const nlohmann::json lp = LogprobsJson(LogprobsOf(chunk));
    bytes += EventChunk(request_.chat ? ChatChunkJson(ids_, chunk.text, first_delta_, lp)
                                      : CompletionChunkJson(ids_, chunk.text, lp));
    first_delta_ = false;
  } else if (!chunk.text.empty() || (request_.chat && first_delta_)) {
    bytes += EventChunk(deltas_->Delta(chunk.text, first_delta_));
    first_delta_ = false;
  }
  if (!bytes.empty()) connection_->Post(std::move(bytes), /*last=*/false);
}

void Exchange::OnDone(absl::Status status) {
  std::string bytes;
  if (!request_.stream) {
    if (status.ok() && final_.has_value()) {
      text_ += final_->text;
      const nlohmann::json lp = request_.generate.logprobs() ? LogprobsJson(logprobs_) : nlohmann::json(nullptr);
      bytes = JsonResponse(200,
                           request_.chat ? ChatCompletionJson(ids_, text_, *final_, lp)
                                         : CompletionJson(ids_, text_, *final_, lp),
                           keep_alive_);
    } else {
      bytes = ErrorResponse(status.ok() ? absl::InternalError("no final report") : status, keep_alive_);
    }
  } else if (!stream_started_ && !status.ok()) {
    bytes = ErrorResponse(status, keep_alive_);
  } else {
    bytes = StartStreamIfNeeded();
    if (status.ok() && final_.has_value()) {
      if (request_.chat && first_delta_) bytes += EventChunk(ChatChunkJson(ids_, "", true));
      bytes += EventChunk(FinalChunkJson(request_.chat, ids_, *final_));
      if (request_.include_usage) bytes += EventChunk(UsageChunkJson(request_.chat, ids_, *final_));
    } else {
      // Mid-stream failure: OpenAI's servers send the error object as an event.
      bytes += EventChunk(ErrorJson(status));
    }
    bytes += EventChunk("[DONE]");
    bytes += kLastChunk;
  }
  connection_->Post(std::move(bytes), /*last=*/true);
  self_.reset();  // the connection still holds this exchange until the bytes are queued
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpFrontDoor>> HttpFrontDoor::Start(RouterState& state, HttpFrontDoorOptions options) {
  if (options.port < 0 || options.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("--http-port must be in [0, 65535], got ", options.port));
  }
  if (options.threads < 1) options.threads = 1;
  auto impl = std::make_unique<Impl>(state, std::move(options));
  if (absl::Status s = impl->SetUpTls(); !s.ok()) return s;
  if (absl::Status s = impl->Listen(); !s.ok()) return s;
  impl->Accept();
  for (int i = 0; i < impl->options.threads; ++i) {
    impl->threads.emplace_back([raw = impl.get()] {
      pthread_setname_np(pthread_self(), "tandem-http");
      raw->ioc.run();
    });
  }
  TANDEM_LOG(INFO, "router") << "HTTP (OpenAI API) on " << (impl->ssl.has_value() ? "https://" : "http://")
                             << impl->options.host << ":" << impl->port;
  return std::unique_ptr<HttpFrontDoor>(new HttpFrontDoor(std::move(impl)));
}

HttpFrontDoor::HttpFrontDoor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpFrontDoor::~HttpFrontDoor() { Stop(); }

int HttpFrontDoor::port() const { return impl_->port; }

std::string HttpFrontDoor::address() const {
  return absl::StrCat(impl_->options.host, ":", impl_->port);
}

void HttpFrontDoor::StopAccepting() { impl_->StopAccepting(); }

void HttpFrontDoor::Stop() {
  if (impl_ != nullptr && !impl_->threads.empty()) impl_->Stop();
}

}  // namespace tandem::router
