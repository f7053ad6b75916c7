#include "loadgen/client.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "grpcpp/support/client_callback.h"
#include "proto/tandem.grpc.pb.h"

namespace tandem::loadgen {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

const char* CodeName(int code) {
  static constexpr const char* kNames[] = {
      "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
      "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
      "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
  return code >= 0 && code < 17 ? kNames[code] : "UNKNOWN";
}

std::string FinishName(v1::FinishReason reason) {
  switch (reason) {
    case v1::FINISH_REASON_LENGTH: return "length";
    case v1::FINISH_REASON_STOP_TOKEN: return "stop_token";
    case v1::FINISH_REASON_STOP_STRING: return "stop_string";
    default: return "unspecified";
  }
}

std::string StageName(v1::Stage stage) {
  switch (stage) {
    case v1::STAGE_PREFILL_QUEUE: return "prefill_queue";
    case v1::STAGE_PREFILL_COMPUTE: return "prefill_compute";
    case v1::STAGE_KV_TRANSFER: return "kv_transfer";
    case v1::STAGE_DECODE_QUEUE: return "decode_queue";
    case v1::STAGE_DECODE_COMPUTE: return "decode_compute";
    default: return "";
  }
}

RouterFinal CopyFinal(const v1::Final& in) {
  RouterFinal out;
  out.finish_reason = FinishName(in.finish_reason());
  out.prompt_tokens = in.prompt_tokens();
  out.completion_tokens = in.completion_tokens();
  const v1::Timing& t = in.timing();
  out.prefill_queue_ms = t.prefill_queue_ms();
  out.prefill_compute_ms = t.prefill_compute_ms();
  out.kv_transfer_ms = t.kv_transfer_ms();
  out.decode_queue_ms = t.decode_queue_ms();
  out.decode_compute_ms = t.decode_compute_ms();
  out.ttft_ms = t.ttft_ms();
  out.tpot_ms = t.tpot_ms();
  out.e2e_ms = t.e2e_ms();
  out.ttft_met = in.slo().ttft_met();
  out.tpot_met = in.slo().tpot_met();
  out.missed_stage = StageName(in.slo().missed_stage());
  out.explanation = in.slo().explanation();
  out.request_id = in.request_id();
  out.prefill_worker = in.prefill_worker();
  out.decode_worker = in.decode_worker();
  return out;
}

// Requests in flight and ended, shared by the scheduler, the reactors and the progress thread.
struct Tracker {
  absl::Mutex mu;
  int64_t in_flight ABSL_GUARDED_BY(mu) = 0;
  int64_t done ABSL_GUARDED_BY(mu) = 0;
};

// One Generate stream. Owned by Run(), which destroys it only after OnDone has counted it as done.
class Call final : public grpc::ClientReadReactor<v1::GenerateResponse> {
 public:
  Call(RequestResult* result, Clock::time_point t0, Tracker* tracker)
      : result_(result), t0_(t0), tracker_(tracker) {}

  void Start(v1::Tandem::Stub* stub, absl::Duration timeout) {
    context_.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    stub->async()->Generate(&context_, &request_, this);
    StartRead(&response_);
    result_->start_s = SecondsSince(t0_);
    StartCall();
  }

  v1::GenerateRequest& request() { return request_; }
  void Cancel() { context_.TryCancel(); }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream ended; OnDone follows
    // The time is taken first so that copying the message does not count.
    const double now = SecondsSince(t0_);
    last_message_s_ = now;
    if (response_.token_ids_size() > 0) {
      if (result_->first_token_s < 0) {
        result_->first_token_s = now;
      } else {
        result_->itls_ms.push_back((now - last_token_s_) * 1e3);
      }
      last_token_s_ = now;
      result_->output_len += response_.token_ids_size();
    }
    if (response_.has_final()) {
      result_->has_final = true;
      result_->final = CopyFinal(response_.final());
    }
    StartRead(&response_);
  }

  void OnDone(const grpc::Status& status) override {
    const double now = SecondsSince(t0_);
    // A successful stream ends with its Final message; trailers arrive a little later and are not the
    // request's latency (vLLM's E2EL ends at the last chunk too).
    result_->end_s = status.ok() && last_message_s_ >= 0 ? last_message_s_ : now;
    result_->status_code = static_cast<int>(status.error_code());
    result_->status_name = CodeName(result_->status_code);
    if (!status.ok()) result_->error = status.error_message();
    request_.Clear();
    absl::MutexLock lock(&tracker_->mu);  // last: Run() may destroy this Call once done is counted
    --tracker_->in_flight;
    ++tracker_->done;
  }

 private:
  RequestResult* result_;
  Clock::time_point t0_;
  Tracker* tracker_;
  grpc::ClientContext context_;
  v1::GenerateRequest request_;
  v1::GenerateResponse response_;
  double last_message_s_ = -1;
  double last_token_s_ = -1;
};

}  // namespace

struct LoadClient::Impl {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Tandem::Stub> stub;
};

std::string FormatProgress(std::string_view label, int64_t done, int64_t total, int64_t in_flight,
                           double elapsed_s) {
  constexpr int kWidth = 30;
  const int filled = total > 0 ? static_cast<int>(kWidth * done / total) : kWidth;
  std::string bar(filled, '=');
  if (filled < kWidth) bar += '>';
  bar.resize(kWidth, ' ');
  const double rate = elapsed_s > 0 ? done / elapsed_s : 0.0;
  return absl::StrFormat("%s%s[%s] %d/%d done, %d in flight, %.2f req/s, %.1f s", std::string(label),
                         label.empty() ? "" : " ", bar, done, total, in_flight, rate, elapsed_s);
}

LoadClient::LoadClient(const std::string& router_address) : address_(router_address), impl_(new Impl) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  impl_->channel = grpc::CreateCustomChannel(router_address, grpc::InsecureChannelCredentials(), args);
  impl_->stub = v1::Tandem::NewStub(impl_->channel);
}

LoadClient::~LoadClient() = default;

absl::StatusOr<ModelInfo> LoadClient::FetchModel(std::string_view name, absl::Duration timeout) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  v1::ListModelsResponse response;
  const grpc::Status status = impl_->stub->ListModels(&context, v1::ListModelsRequest(), &response);
  if (!status.ok()) {
    return absl::UnavailableError(absl::StrCat("cannot reach the router at ", address_, " (ListModels: ",
                                               CodeName(status.error_code()), ": ", status.error_message(),
                                               ")"));
  }
  std::vector<std::string> names;
  for (const v1::ModelInfo& m : response.models()) {
    names.push_back(m.name());
    if (name.empty() ? response.models_size() == 1 : m.name() == name) {
      return ModelInfo{m.name(), m.vocab_size(), m.max_context()};
    }
  }
  return absl::NotFoundError(absl::StrCat("--model: the router at ", address_, " serves ",
                                          names.empty() ? "no models" : absl::StrJoin(names, ", "),
                                          name.empty() ? std::string("; name one") : absl::StrCat(", not \"", std::string(name), "\"")));
}

std::vector<RequestResult> LoadClient::Run(std::span<const BenchRequest> requests, const RunOptions& options) {
  const int64_t total = static_cast<int64_t>(requests.size());
  std::vector<RequestResult> results(requests.size());
  std::vector<std::unique_ptr<Call>> calls(requests.size());
  Tracker tracker;
  const Clock::time_point t0 = Clock::now();

  bool stop_progress = false;  // guarded by tracker.mu
  int64_t sent = 0;
  auto interrupted = [&options] { return options.interrupt != nullptr && options.interrupt->load(); };
  std::thread progress;
  if (options.progress) {
    progress = std::thread([&] {
      double next_plain_s = 10.0;
      for (;;) {
        int64_t done, in_flight;
        bool stop;
        {
          absl::MutexLock lock(&tracker.mu);
          tracker.mu.AwaitWithTimeout(absl::Condition(&stop_progress), absl::Milliseconds(250));
          done = tracker.done;
          in_flight = tracker.in_flight;
          stop = stop_progress;
        }
        const std::string line = FormatProgress(options.progress_label, done, total, in_flight, SecondsSince(t0));
        if (options.progress_tty) {
          std::fprintf(stderr, "\r%s\033[K%s", line.c_str(), stop ? "\n" : "");
        } else if (stop || SecondsSince(t0) >= next_plain_s) {
          // Not a terminal (a CI log, a pipe): a plain line now and then, no carriage returns.
          std::fprintf(stderr, "%s\n", line.c_str());
          next_plain_s += 10.0;
        }
        std::fflush(stderr);
        if (stop) return;
      }
    });
  }

  for (size_t i = 0; i < requests.size(); ++i) {
    const BenchRequest& r = requests[i];
    RequestResult& result = results[i];
    result.index = r.index;
    result.input_len = r.prompt_len;
    result.requested_output_len = r.output_len;
    result.scheduled_s = r.arrival_s;
    auto call = std::make_unique<Call>(&result, t0, &tracker);
    v1::GenerateRequest& request = call->request();
    request.set_model(options.model);
    const std::vector<int32_t> ids = PromptTokenIds(options.seed, r.index, r.prompt_len, options.vocab_size);
    request.mutable_prompt_token_ids()->mutable_ids()->Add(ids.begin(), ids.end());
    request.set_max_tokens(static_cast<int32_t>(r.output_len));
    request.set_ignore_eos(true);
    if (options.ttft_slo_ms > 0 || options.tpot_slo_ms > 0 || options.best_effort) {
      request.mutable_slo()->set_ttft_ms(options.ttft_slo_ms);
      request.mutable_slo()->set_tpot_ms(options.tpot_slo_ms);
      request.mutable_slo()->set_best_effort(options.best_effort);
    }
    request.set_request_id(absl::StrCat("bench-", r.index));
    // Open loop: wait for the arrival time only, never for earlier requests (except a concurrency cap);
    // in slices, so that an interrupt is seen at once.
    const Clock::time_point at =
        t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(r.arrival_s));
    while (!interrupted() && Clock::now() < at) {
      std::this_thread::sleep_until(std::min(at, Clock::now() + std::chrono::milliseconds(100)));
    }
    {
      absl::MutexLock lock(&tracker.mu);
      if (options.max_concurrency > 0) {
        const int64_t cap = options.max_concurrency;
        auto below_cap = [&tracker, cap, &interrupted]() { return tracker.in_flight < cap || interrupted(); };
        while (!tracker.mu.AwaitWithTimeout(absl::Condition(&below_cap), absl::Milliseconds(100))) {
        }
      }
      if (interrupted()) break;
      ++tracker.in_flight;
    }
    calls[i] = std::move(call);
    calls[i]->Start(impl_->stub.get(), options.request_timeout);
    ++sent;
  }

  {
    absl::MutexLock lock(&tracker.mu);
    auto all_done = [&tracker, &sent]() { return tracker.done == sent; };
    bool cancelled = false;
    while (!tracker.mu.AwaitWithTimeout(absl::Condition(&all_done), absl::Milliseconds(100))) {
      if (interrupted() && !cancelled) {
        // Ctrl-C: what is still running is cancelled and left out of the summary.
        cancelled = true;
        tracker.mu.Unlock();
        for (int64_t k = 0; k < sent; ++k) calls[k]->Cancel();  // a finished call ignores it
        tracker.mu.Lock();
      }
    }
    stop_progress = true;
    if (cancelled) {
      for (int64_t k = 0; k < sent; ++k) {
        results[k].interrupted_by_user = results[k].status_code == static_cast<int>(grpc::StatusCode::CANCELLED);
      }
    }
  }
  if (progress.joinable()) progress.join();
  // Requests never sent (an interrupt) are not results.
  results.resize(static_cast<size_t>(sent));
  return results;
}

}  // namespace tandem::loadgen
