// Test-only prefill and decode workers: real gRPC servers on loopback (port 0) that speak
// worker.proto with deterministic tokens, record every call, and fail on request. They run no model:
// Prefill answers `first_token` and a fresh lease; Decode streams `tokens` (up to max_tokens - 1,
// stopping after a stop token id) and reports fixed stage times.
//
// Thread safety: every method is thread-safe; options may change while calls are in flight (a call
// uses the options current when it arrived).
#ifndef TANDEM_ROUTER_TESTING_FAKE_WORKERS_H_
#define TANDEM_ROUTER_TESTING_FAKE_WORKERS_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/server.h"
#include "proto/worker.grpc.pb.h"

namespace tandem::router::testing {

// Polls `predicate` until it holds or `timeout` passes; returns its last value.
bool WaitFor(const std::function<bool()>& predicate, absl::Duration timeout = absl::Seconds(5));

struct FakePrefillOptions {
  int32_t first_token = 'H';
  absl::Duration delay;                 // before answering
  absl::Status fail = absl::OkStatus();  // non-OK: every Prefill fails with it
  double queue_ms = 1.0;                // reported stage times
  double compute_ms = 2.0;
};

class FakePrefillWorker {
 public:
  static std::unique_ptr<FakePrefillWorker> Start(FakePrefillOptions options = {});
  ~FakePrefillWorker();

  const std::string& address() const { return address_; }
  void set_options(const FakePrefillOptions& options);
  // GetLoad answers `report` from now on (until then: an idle report, 100 free blocks of 16 tokens).
  void set_load_report(const worker::v1::LoadReport& report);
  // Stops the server (its port then refuses connections). Idempotent.
  void Shutdown();

  std::vector<worker::v1::PrefillRequest> prefill_requests() const;
  // The deadline each Prefill call arrived with (absl::InfiniteFuture() for none).
  std::vector<absl::Time> prefill_deadlines() const;
  std::vector<std::string> leases_issued() const;
  std::vector<std::string> leases_released() const;

 private:
  class Service;
  FakePrefillWorker() = default;

  std::string address_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  bool shut_down_ = false;
};

struct FakeDecodeOptions {
  enum class Mode {
    kNormal,
    kUnavailable,  // every Decode fails with UNAVAILABLE before any token
    kHang,         // never streams; waits for the cancel
    kDieAtEnd,     // streams every token, then ends UNAVAILABLE instead of OK (died before its status)
    kKvSourceGone,  // every Decode fails before any token as a failed KV pull does (UNAVAILABLE, marked
                    // as the source's failure: proto/grpc_status.h)
  };
  Mode mode = Mode::kNormal;
  std::vector<int32_t> tokens;  // streamed after the first token; empty: "ello world" then 'a'...
  absl::Duration token_delay;   // before each token
  double queue_ms = 3.0;        // reported stage times
  double kv_transfer_ms = 4.0;
  double compute_ms = 5.0;
};

class FakeDecodeWorker {
 public:
  static std::unique_ptr<FakeDecodeWorker> Start(FakeDecodeOptions options = {});
  ~FakeDecodeWorker();

  const std::string& address() const { return address_; }
  void set_options(const FakeDecodeOptions& options);
  // GetLoad answers `report` from now on (until then: an idle report, 100 free blocks of 16 tokens).
  void set_load_report(const worker::v1::LoadReport& report);
  void Shutdown();
  // grpc.health.v1 answers SERVING (the default) or NOT_SERVING; calls are still taken.
  void SetServing(bool serving);

  std::vector<worker::v1::DecodeRequest> decode_requests() const;
  // The deadline each Decode call arrived with (absl::InfiniteFuture() for none).
  std::vector<absl::Time> decode_deadlines() const;
  int cancellations() const;  // Decode calls that saw the client cancel
  int completions() const;    // Decode calls that streamed to the end

 private:
  class Service;
  FakeDecodeWorker() = default;

  std::string address_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  bool shut_down_ = false;
};

// Writes a model directory the router can serve at `path` (created): config.json of the "tiny" preset
// (512 tokens of context and vocabulary, "<s>" as BOS, "</s>" as EOS) and a byte-level tokenizer.json
// whose ids 0..255 are the bytes; no weights (the router reads none). Returns `path`.
std::string WriteTinyRouterModel(const std::string& path);

// Text helpers: the test tokenizer maps ids 0..255 to bytes, so ASCII text is its own token ids.
std::vector<int32_t> AsciiTokens(const std::string& text);

}  // namespace tandem::router::testing

#endif  // TANDEM_ROUTER_TESTING_FAKE_WORKERS_H_
