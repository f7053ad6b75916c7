#include "kvtransfer/fault_injecting_transport.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "kvtransfer/kv_chunking.h"

namespace tandem {
namespace {

// What the wrapped transport writes into: applies the faults, then forwards to the validating sink.
class FaultSink : public KvSink {
 public:
  FaultSink(ValidatingKvSink& out, const KvFaultOptions& options, absl::Time deadline)
      : out_(out), options_(options), deadline_(deadline) {}

  const KvLayout& layout() const override { return out_.layout(); }
  int32_t num_tokens() const override { return out_.num_tokens(); }

  absl::Status WriteTokens(int32_t layer, int32_t token_begin, int32_t num_tokens, const void* k,
                           const void* v) override {
    const int32_t index = chunks_seen_++;
    if (index == options_.stall_at_chunk) {
      if (deadline_ == absl::InfiniteFuture()) {
        return absl::UnavailableError(
            absl::StrCat("fault injection: kv transfer stalled at chunk ", index, " (no deadline)"));
      }
      absl::SleepFor(deadline_ - absl::Now());
      return absl::DeadlineExceededError(absl::StrCat(
          "fault injection: kv transfer stalled at chunk ", index, " until the deadline"));
    }
    if (options_.fail_after_chunks >= 0 && index >= options_.fail_after_chunks) {
      return absl::UnavailableError(absl::StrCat("fault injection: kv transfer failed after ",
                                                 index, " chunks"));
    }
    if (options_.delay_per_chunk > absl::ZeroDuration()) absl::SleepFor(options_.delay_per_chunk);
    if (index == options_.drop_chunk) return absl::OkStatus();
    const int64_t size = int64_t{num_tokens} * layout().bytes_per_token_per_layer();
    const char* k_bytes = static_cast<const char*>(k);
    const char* v_bytes = static_cast<const char*>(v);
    if (index == options_.corrupt_size_chunk) {
      return out_.WriteChunk(layer, token_begin, num_tokens,
                             absl::string_view(k_bytes, size > 0 ? size - 1 : 0),
                             absl::string_view(v_bytes, size));
    }
    return out_.WriteChunk(layer, token_begin, num_tokens, absl::string_view(k_bytes, size),
                           absl::string_view(v_bytes, size));
  }

 private:
  ValidatingKvSink& out_;
  const KvFaultOptions options_;
  const absl::Time deadline_;
  int32_t chunks_seen_ = 0;
};

}  // namespace

FaultInjectingKvTransport::FaultInjectingKvTransport(std::unique_ptr<KvTransport> inner,
                                                     KvFaultOptions options)
    : inner_(std::move(inner)),
      name_(absl::StrCat("fault(", std::string(inner_->name()), ")")),
      options_(options) {}

void FaultInjectingKvTransport::set_options(const KvFaultOptions& options) {
  absl::MutexLock lock(&mu_);
  options_ = options;
}

absl::StatusOr<PullStats> FaultInjectingKvTransport::Pull(const KvHandle& handle, KvSink& sink,
                                                          absl::Time deadline) {
  KvFaultOptions options;
  {
    absl::MutexLock lock(&mu_);
    options = options_;
  }
  const absl::Time start = absl::Now();
  if (options.fail_before_first_byte) {
    return absl::UnavailableError(absl::StrCat("fault injection: kv source ", handle.source,
                                               " unavailable before the first byte (lease ",
                                               handle.lease_id, ")"));
  }
  ValidatingKvSink validating(sink);
  FaultSink faulty(validating, options, deadline);
  TANDEM_RETURN_IF_ERROR(inner_->Pull(handle, faulty, deadline).status());
  TANDEM_RETURN_IF_ERROR(validating.Finish());
  return PullStats{validating.bytes(), validating.chunks(), absl::Now() - start};
}

}  // namespace tandem
