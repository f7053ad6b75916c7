#include "kvtransfer/inproc_transport.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "kvtransfer/kv_chunking.h"

namespace tandem {

InProcessKvRegistry& InProcessKvRegistry::Global() {
  static auto* registry = new InProcessKvRegistry();  // never destroyed: outlives every static
  return *registry;
}

absl::Status InProcessKvRegistry::Register(const std::string& name, KvSource* source) {
  if (name.empty()) return absl::InvalidArgumentError("in-process kv source: name is empty");
  if (source == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("in-process kv source '", name, "' is null"));
  }
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = entries_.try_emplace(name);
  if (!inserted) {
    return absl::AlreadyExistsError(
        absl::StrCat("in-process kv source '", name, "' is already registered"));
  }
  it->second.source = source;
  return absl::OkStatus();
}

absl::Status InProcessKvRegistry::Unregister(const std::string& name) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(name);
  if (it == entries_.end() || it->second.closing) {
    return absl::NotFoundError(absl::StrCat("in-process kv source '", name, "' is not registered"));
  }
  it->second.closing = true;
  // Flat-hash-map iterators move on insert, so look the entry up again on every wake-up.
  auto idle = [this, &name]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return entries_.find(name)->second.pulls == 0;
  };
  mu_.Await(absl::Condition(&idle));
  entries_.erase(name);
  return absl::OkStatus();
}

absl::StatusOr<KvSource*> InProcessKvRegistry::Acquire(const std::string& name) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(name);
  if (it == entries_.end() || it->second.closing) {
    return absl::UnavailableError(
        absl::StrCat("in-process kv source '", name, "' is not registered"));
  }
  ++it->second.pulls;
  return it->second.source;
}

void InProcessKvRegistry::Release(const std::string& name) {
  absl::MutexLock lock(&mu_);
  --entries_.find(name)->second.pulls;
}

InProcessKvTransport::InProcessKvTransport(InProcessKvRegistry* registry,
                                           InProcessKvTransportOptions options)
    : registry_(registry), options_(options) {}

absl::StatusOr<PullStats> InProcessKvTransport::Pull(const KvHandle& handle, KvSink& sink,
                                                     absl::Time deadline) {
  const absl::Time start = absl::Now();
  TANDEM_RETURN_IF_ERROR(CheckPullStart(handle, sink, deadline));
  TANDEM_ASSIGN_OR_RETURN(KvSource * source, registry_->Acquire(handle.source));
  struct Unpin {
    InProcessKvRegistry* registry;
    const std::string& name;
    ~Unpin() { registry->Release(name); }
  } unpin{registry_, handle.source};

  // From here on this plays the source's part, exactly as the gRPC reactor does.
  if (absl::Status s = CheckSameLayout(source->layout(), handle.layout); !s.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("kv source '", handle.source,
                                                      "' refuses lease ", handle.lease_id, ": ",
                                                      s.message()));
  }
  TANDEM_ASSIGN_OR_RETURN(const int32_t lease_tokens, source->LeaseTokens(handle.lease_id));
  const KvLayout& layout = source->layout();
  const int32_t per_chunk = TokensPerChunk(layout, options_.max_chunk_bytes);
  const int64_t bytes_per_token = layout.bytes_per_token_per_layer();
  std::vector<char> k(static_cast<size_t>(std::min(per_chunk, lease_tokens)) * bytes_per_token);
  std::vector<char> v(k.size());

  ValidatingKvSink validating(sink);
  for (int32_t layer = 0; layer < layout.num_layers; ++layer) {
    for (int32_t begin = 0; begin < lease_tokens; begin += per_chunk) {
      if (absl::Now() >= deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat("kv pull of lease ", handle.lease_id, " from '", handle.source,
                         "': deadline exceeded after ", validating.chunks(), " chunks"));
      }
      const int32_t count = std::min(per_chunk, lease_tokens - begin);
      TANDEM_RETURN_IF_ERROR(
          source->ReadTokens(handle.lease_id, layer, begin, count, k.data(), v.data()));
      TANDEM_RETURN_IF_ERROR(validating.WriteTokens(layer, begin, count, k.data(), v.data()));
    }
  }
  TANDEM_RETURN_IF_ERROR(validating.Finish());
  return PullStats{validating.bytes(), validating.chunks(), absl::Now() - start};
}

}  // namespace tandem
