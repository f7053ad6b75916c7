#include "router/testing/fake_workers.h"

#include <pthread.h>

#include <algorithm>
#include <optional>
#include <utility>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "model/config.h"
#include "model/random_model.h"
#include "tokenizer/make_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "proto/grpc_status.h"

namespace tandem::router::testing {

namespace wv1 = ::tandem::worker::v1;

bool WaitFor(const std::function<bool()>& predicate, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!predicate()) {
    if (absl::Now() >= deadline) return predicate();
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

std::vector<int32_t> AsciiTokens(const std::string& text) {
  std::vector<int32_t> ids;
  for (unsigned char c : text) ids.push_back(c);
  return ids;
}

namespace {

// Builds and starts a loopback server on a free port; "" on failure.
std::unique_ptr<grpc::Server> StartServer(grpc::Service* service, std::string* address) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) return nullptr;
  *address = absl::StrCat("127.0.0.1:", port);
  return server;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Prefill

// The deadline a call arrived with; absl::InfiniteFuture() when it has none (gRPC reports a far-future time).
absl::Time CallDeadline(const grpc::CallbackServerContext& context) {
  const absl::Time t = absl::FromChrono(context.deadline());
  return t > absl::Now() + absl::Hours(24 * 365) ? absl::InfiniteFuture() : t;
}

class FakePrefillWorker::Service final : public wv1::PrefillWorker::CallbackService {
 public:
  explicit Service(FakePrefillOptions options) : options_(std::move(options)) {}

  void set_options(const FakePrefillOptions& options) {
    absl::MutexLock lock(&mu_);
    options_ = options;
  }
  void set_load_report(const wv1::LoadReport& report) {
    absl::MutexLock lock(&mu_);
    load_report_ = report;
  }

  grpc::ServerUnaryReactor* Prefill(grpc::CallbackServerContext* context, const wv1::PrefillRequest* request,
                                    wv1::PrefillResponse* response) override {
    FakePrefillOptions options;
    std::string lease;
    {
      absl::MutexLock lock(&mu_);
      options = options_;
      requests_.push_back(*request);
      deadlines_.push_back(CallDeadline(*context));
      if (options.fail.ok()) {
        lease = absl::StrCat("lease-", ++next_lease_);
        issued_.push_back(lease);
      }
    }
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    auto answer = [reactor, response, options, lease, prompt_len = request->prompt_size()] {
      if (!options.fail.ok()) {
        reactor->Finish(ToGrpcStatus(options.fail));
        return;
      }
      response->set_first_token(options.first_token);
      response->set_queue_ms(options.queue_ms);
      response->set_compute_ms(options.compute_ms);
      wv1::KvHandle* kv = response->mutable_kv();
      kv->set_lease_id(lease);
      kv->set_source("fake-prefill");
      kv->set_num_tokens(prompt_len);
      kv->set_lease_ms(30000);
      kv->set_transport("grpc");
      reactor->Finish(grpc::Status::OK);
    };
    if (options.delay <= absl::ZeroDuration()) {
      answer();
    } else {
      absl::MutexLock lock(&mu_);
      threads_.emplace_back([this, answer, delay = options.delay] {
        pthread_setname_np(pthread_self(), "fake-worker");
        {
          absl::MutexLock lock(&mu_);
          mu_.AwaitWithTimeout(absl::Condition(&stopping_), delay);
        }
        answer();
      });
    }
    return reactor;
  }

  grpc::ServerUnaryReactor* ReleaseKv(grpc::CallbackServerContext* context, const wv1::ReleaseKvRequest* request,
                                      wv1::ReleaseKvResponse* response) override {
    {
      absl::MutexLock lock(&mu_);
      const bool known = std::find(issued_.begin(), issued_.end(), request->lease_id()) != issued_.end();
      const bool already = std::find(released_.begin(), released_.end(), request->lease_id()) != released_.end();
      response->set_released(known && !already);
      released_.push_back(request->lease_id());
    }
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* GetLoad(grpc::CallbackServerContext* context, const wv1::LoadRequest* request,
                                    wv1::LoadReport* report) override {
    {
      absl::MutexLock lock(&mu_);
      if (load_report_.has_value()) {
        *report = *load_report_;
      } else {
        report->set_role("prefill");
        report->set_leases_held(static_cast<int32_t>(issued_.size() - std::min(issued_.size(), released_.size())));
        report->set_kv_blocks_free(100);
        report->set_kv_blocks_total(100);
        report->set_block_size(16);
      }
    }
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  // Delayed answers go out at once from now on.
  void SetStopping() {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  void JoinThreads() {
    std::vector<std::thread> threads;
    {
      absl::MutexLock lock(&mu_);
      threads.swap(threads_);
    }
    for (std::thread& t : threads) t.join();
  }

  std::vector<wv1::PrefillRequest> requests() const {
    absl::MutexLock lock(&mu_);
    return requests_;
  }
  std::vector<absl::Time> deadlines() const {
    absl::MutexLock lock(&mu_);
    return deadlines_;
  }
  std::vector<std::string> issued() const {
    absl::MutexLock lock(&mu_);
    return issued_;
  }
  std::vector<std::string> released() const {
    absl::MutexLock lock(&mu_);
    return released_;
  }

 private:
  mutable absl::Mutex mu_;
  FakePrefillOptions options_ ABSL_GUARDED_BY(mu_);
  std::optional<wv1::LoadReport> load_report_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int next_lease_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<wv1::PrefillRequest> requests_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Time> deadlines_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> issued_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> released_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
};

std::unique_ptr<FakePrefillWorker> FakePrefillWorker::Start(FakePrefillOptions options) {
  std::unique_ptr<FakePrefillWorker> worker(new FakePrefillWorker);
  worker->service_ = std::make_unique<Service>(std::move(options));
  worker->server_ = StartServer(worker->service_.get(), &worker->address_);
  if (worker->server_ == nullptr) return nullptr;
  return worker;
}

FakePrefillWorker::~FakePrefillWorker() { Shutdown(); }

void FakePrefillWorker::set_options(const FakePrefillOptions& options) { service_->set_options(options); }

void FakePrefillWorker::set_load_report(const wv1::LoadReport& report) { service_->set_load_report(report); }

void FakePrefillWorker::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  service_->SetStopping();
  server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  service_->JoinThreads();
}

std::vector<wv1::PrefillRequest> FakePrefillWorker::prefill_requests() const { return service_->requests(); }
std::vector<absl::Time> FakePrefillWorker::prefill_deadlines() const { return service_->deadlines(); }
std::vector<std::string> FakePrefillWorker::leases_issued() const { return service_->issued(); }
std::vector<std::string> FakePrefillWorker::leases_released() const { return service_->released(); }

// ---------------------------------------------------------------------------------------------
// Decode

namespace {

// One Decode call, driven by its own thread (test code: blocking waits are fine here).
class DecodeStream final : public grpc::ServerWriteReactor<wv1::DecodeResponse> {
 public:
  DecodeStream(wv1::DecodeRequest request, FakeDecodeOptions options)
      : request_(std::move(request)), options_(std::move(options)) {}

  // Returns true when the call saw the client cancel.
  bool Run() {
    bool cancelled = false;
    if (options_.mode == FakeDecodeOptions::Mode::kUnavailable) {
      Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "fake decode worker: unavailable"));
    } else if (options_.mode == FakeDecodeOptions::Mode::kKvSourceGone) {
      Finish(ToGrpcStatus(MarkKvSourceFailure(absl::UnavailableError("KV transfer: fake source refused the connection"))));
    } else if (options_.mode == FakeDecodeOptions::Mode::kHang) {
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(
            +[](DecodeStream* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu_) { return s->cancelled_ || s->stopping_; },
            this));
        cancelled = cancelled_;
      }
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
    } else {
      cancelled = Stream();
      if (cancelled) {
        Finish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
      } else if (options_.mode == FakeDecodeOptions::Mode::kDieAtEnd) {
        Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "Socket closed"));
      } else {
        Finish(grpc::Status::OK);
      }
    }
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done_));
    return cancelled;
  }

  void Stop() {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    write_pending_ = false;
  }
  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
  }
  void OnDone() override {
    absl::MutexLock lock(&mu_);
    done_ = true;
  }

 private:
  bool Stream() {
    std::vector<int32_t> tokens = options_.tokens;
    if (tokens.empty()) {
      tokens = AsciiTokens("ello world");
      for (int i = 0; i < 64; ++i) tokens.push_back('a' + i % 26);
    }
    const int count = std::min<int>(std::max(0, request_.max_tokens() - 1), static_cast<int>(tokens.size()));
    auto set_final = [this](const char* reason) {
      wv1::DecodeFinal* final = response_.mutable_final();
      final->set_finish_reason(reason);
      final->set_queue_ms(options_.queue_ms);
      final->set_kv_transfer_ms(options_.kv_transfer_ms);
      final->set_compute_ms(options_.compute_ms);
    };
    for (int i = 0; i < count; ++i) {
      {
        absl::MutexLock lock(&mu_);
        mu_.AwaitWithTimeout(absl::Condition(
                                 +[](DecodeStream* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu_) {
                                   return s->cancelled_ || s->stopping_;
                                 },
                                 this),
                             options_.token_delay);
        if (cancelled_ || stopping_) return cancelled_;
      }
      const int32_t token = tokens[static_cast<size_t>(i)];
      const bool stop = std::find(request_.stop_token_ids().begin(), request_.stop_token_ids().end(), token) !=
                        request_.stop_token_ids().end();
      response_.Clear();
      response_.add_token_ids(token);
      if (stop || i + 1 == count) set_final(stop ? "stop" : "length");
      if (!Write()) return true;
      if (stop) return false;
    }
    if (count == 0) {
      response_.Clear();
      set_final("length");
      if (!Write()) return true;
    }
    return false;
  }

  // False when the client went away.
  bool Write() {
    {
      absl::MutexLock lock(&mu_);
      write_pending_ = true;
    }
    StartWrite(&response_);
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](DecodeStream* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu_) { return !s->write_pending_; }, this));
    return !cancelled_;
  }

  const wv1::DecodeRequest request_;
  const FakeDecodeOptions options_;
  wv1::DecodeResponse response_;
  absl::Mutex mu_;
  bool write_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

class FakeDecodeWorker::Service final : public wv1::DecodeWorker::CallbackService {
 public:
  explicit Service(FakeDecodeOptions options) : options_(std::move(options)) {}

  void set_options(const FakeDecodeOptions& options) {
    absl::MutexLock lock(&mu_);
    options_ = options;
  }
  void set_load_report(const wv1::LoadReport& report) {
    absl::MutexLock lock(&mu_);
    load_report_ = report;
  }

  grpc::ServerWriteReactor<wv1::DecodeResponse>* Decode(grpc::CallbackServerContext* context,
                                                       const wv1::DecodeRequest* request) override {
    absl::MutexLock lock(&mu_);
    requests_.push_back(*request);
    deadlines_.push_back(CallDeadline(*context));
    auto stream = std::make_unique<DecodeStream>(*request, options_);
    DecodeStream* raw = stream.get();
    if (stopping_) raw->Stop();
    streams_.push_back(std::move(stream));
    threads_.emplace_back([this, raw] {
      pthread_setname_np(pthread_self(), "fake-worker");  // tests tell these from the router's threads
      const bool cancelled = raw->Run();
      absl::MutexLock lock(&mu_);
      (cancelled ? cancellations_ : completions_)++;
    });
    return raw;
  }

  grpc::ServerUnaryReactor* GetLoad(grpc::CallbackServerContext* context, const wv1::LoadRequest* request,
                                    wv1::LoadReport* report) override {
    {
      absl::MutexLock lock(&mu_);
      if (load_report_.has_value()) {
        *report = *load_report_;
      } else {
        report->set_role("decode");
        report->set_kv_blocks_free(100);
        report->set_kv_blocks_total(100);
        report->set_block_size(16);
      }
    }
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  void SetStopping() {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    for (auto& stream : streams_) stream->Stop();
  }
  void JoinThreads() {
    std::vector<std::thread> threads;
    {
      absl::MutexLock lock(&mu_);
      threads.swap(threads_);
    }
    for (std::thread& t : threads) t.join();
  }

  std::vector<wv1::DecodeRequest> requests() const {
    absl::MutexLock lock(&mu_);
    return requests_;
  }
  std::vector<absl::Time> deadlines() const {
    absl::MutexLock lock(&mu_);
    return deadlines_;
  }
  int cancellations() const {
    absl::MutexLock lock(&mu_);
    return cancellations_;
  }
  int completions() const {
    absl::MutexLock lock(&mu_);
    return completions_;
  }

 private:
  mutable absl::Mutex mu_;
  FakeDecodeOptions options_ ABSL_GUARDED_BY(mu_);
  std::optional<wv1::LoadReport> load_report_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<wv1::DecodeRequest> requests_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Time> deadlines_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<DecodeStream>> streams_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
  int cancellations_ ABSL_GUARDED_BY(mu_) = 0;
  int completions_ ABSL_GUARDED_BY(mu_) = 0;
};

std::unique_ptr<FakeDecodeWorker> FakeDecodeWorker::Start(FakeDecodeOptions options) {
  std::unique_ptr<FakeDecodeWorker> worker(new FakeDecodeWorker);
  worker->service_ = std::make_unique<Service>(std::move(options));
  worker->server_ = StartServer(worker->service_.get(), &worker->address_);
  if (worker->server_ == nullptr) return nullptr;
  return worker;
}

FakeDecodeWorker::~FakeDecodeWorker() { Shutdown(); }

void FakeDecodeWorker::set_options(const FakeDecodeOptions& options) { service_->set_options(options); }

void FakeDecodeWorker::set_load_report(const wv1::LoadReport& report) { service_->set_load_report(report); }

void FakeDecodeWorker::SetServing(bool serving) { server_->GetHealthCheckService()->SetServingStatus(serving); }

void FakeDecodeWorker::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  service_->SetStopping();
  server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  service_->JoinThreads();
}

std::vector<wv1::DecodeRequest> FakeDecodeWorker::decode_requests() const { return service_->requests(); }
std::vector<absl::Time> FakeDecodeWorker::decode_deadlines() const { return service_->deadlines(); }
int FakeDecodeWorker::cancellations() const { return service_->cancellations(); }
int FakeDecodeWorker::completions() const { return service_->completions(); }

std::string WriteTinyRouterModel(const std::string& path) {
  std::filesystem::create_directories(path);
  ModelConfig config = *PresetConfig("tiny");
  absl::StatusOr<std::string> json =
      MakeByteLevelBpeTokenizerJson(static_cast<int>(config.vocab_size), kEnglishTrainingText, {"<s>", "</s>"});
  if (!json.ok()) return path;  // the router then fails to load it, naming the file
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromJson(*json, "test tokenizer");
  if (tokenizer.ok()) {
    config.bos_token_ids = {*(*tokenizer)->TokenToId("<s>")};
    config.eos_token_ids = {*(*tokenizer)->TokenToId("</s>")};
  }
  std::ofstream(path + "/config.json") << ModelConfigToJson(config);
  std::ofstream(path + "/tokenizer.json") << *json;
  return path;
}

}  // namespace tandem::router::testing
