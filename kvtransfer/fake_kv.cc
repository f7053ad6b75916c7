#include "kvtransfer/fake_kv.h"

#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"

namespace tandem {
namespace {

std::string RandomBytes(std::mt19937_64& rng, int64_t size) {
  std::string bytes(size, '\0');
  int64_t i = 0;
  for (; i + 8 <= size; i += 8) {
    const uint64_t word = rng();
    std::memcpy(&bytes[i], &word, 8);
  }
  for (; i < size; ++i) bytes[i] = static_cast<char>(rng());
  return bytes;
}

}  // namespace

KvLayout FakeLayout(int32_t num_layers, DType dtype) {
  KvLayout layout;
  layout.model_fingerprint = "fake-model";
  layout.num_layers = num_layers;
  layout.num_kv_heads = 2;
  layout.head_dim = 8;
  layout.dtype = dtype;
  return layout;
}

FakeKvSource::FakeKvSource(KvLayout layout, uint64_t seed) : layout_(std::move(layout)), seed_(seed) {}

std::string FakeKvSource::AddLease(int32_t num_tokens) {
  auto lease = std::make_shared<Lease>();
  lease->num_tokens = num_tokens;
  std::string id;
  uint64_t seed;
  {
    absl::MutexLock lock(&mu_);
    id = absl::StrCat("lease-", next_lease_++);
    seed = seed_++;
  }
  std::mt19937_64 rng(seed);
  const int64_t size = int64_t{num_tokens} * layout_.bytes_per_token_per_layer();
  for (int32_t layer = 0; layer < layout_.num_layers; ++layer) {
    lease->k.push_back(RandomBytes(rng, size));
    lease->v.push_back(RandomBytes(rng, size));
  }
  absl::MutexLock lock(&mu_);
  leases_[id] = std::move(lease);
  return id;
}

void FakeKvSource::RemoveLease(const std::string& lease_id) {
  absl::MutexLock lock(&mu_);
  leases_.erase(lease_id);
}

std::shared_ptr<const FakeKvSource::Lease> FakeKvSource::Find(const std::string& lease_id) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = leases_.find(lease_id);
  return it == leases_.end() ? nullptr : it->second;
}

const std::string& FakeKvSource::K(const std::string& lease_id, int32_t layer) const {
  return Find(lease_id)->k[layer];
}

const std::string& FakeKvSource::V(const std::string& lease_id, int32_t layer) const {
  return Find(lease_id)->v[layer];
}

absl::StatusOr<int32_t> FakeKvSource::LeaseTokens(const std::string& lease_id) {
  auto lease = Find(lease_id);
  if (lease == nullptr) return absl::NotFoundError(absl::StrCat("kv lease ", lease_id, " not found"));
  return lease->num_tokens;
}

absl::Status FakeKvSource::ReadTokens(const std::string& lease_id, int32_t layer,
                                      int32_t token_begin, int32_t num_tokens, void* k_out,
                                      void* v_out) {
  reads_.fetch_add(1);
  if (stalled_.load()) unstall_.WaitForNotificationWithTimeout(absl::Seconds(60));
  auto lease = Find(lease_id);
  if (lease == nullptr) return absl::NotFoundError(absl::StrCat("kv lease ", lease_id, " not found"));
  if (layer < 0 || layer >= layout_.num_layers || token_begin < 0 || num_tokens < 0 ||
      int64_t{token_begin} + num_tokens > lease->num_tokens) {
    return absl::OutOfRangeError(absl::StrCat("kv lease ", lease_id, ": layer ", layer, " tokens [",
                                              token_begin, ", ", token_begin + num_tokens,
                                              ") out of range"));
  }
  const int64_t stride = layout_.bytes_per_token_per_layer();
  std::memcpy(k_out, lease->k[layer].data() + token_begin * stride, num_tokens * stride);
  std::memcpy(v_out, lease->v[layer].data() + token_begin * stride, num_tokens * stride);
  return absl::OkStatus();
}

RecordingKvSink::RecordingKvSink(KvLayout layout, int32_t num_tokens)
    : layout_(std::move(layout)), num_tokens_(num_tokens) {
  const int64_t size = int64_t{num_tokens} * layout_.bytes_per_token_per_layer();
  k_.assign(layout_.num_layers, std::string(size, '\0'));
  v_.assign(layout_.num_layers, std::string(size, '\0'));
}

absl::Status RecordingKvSink::WriteTokens(int32_t layer, int32_t token_begin, int32_t num_tokens,
                                          const void* k, const void* v) {
  const int32_t index = writes_++;
  if (fail_from_write_ >= 0 && index >= fail_from_write_) {
    return absl::InternalError(absl::StrCat("recording sink: write ", index, " fails on purpose"));
  }
  const int64_t stride = layout_.bytes_per_token_per_layer();
  std::memcpy(&k_[layer][token_begin * stride], k, num_tokens * stride);
  std::memcpy(&v_[layer][token_begin * stride], v, num_tokens * stride);
  return absl::OkStatus();
}

absl::Status CheckSameKv(const FakeKvSource& source, const std::string& lease_id,
                         const RecordingKvSink& sink) {
  for (int32_t layer = 0; layer < source.layout().num_layers; ++layer) {
    for (const char* which : {"K", "V"}) {
      const bool is_k = which[0] == 'K';
      const std::string& want = is_k ? source.K(lease_id, layer) : source.V(lease_id, layer);
      const std::string& got = is_k ? sink.K(layer) : sink.V(layer);
      if (want == got) continue;
      size_t at = 0;
      while (at < want.size() && at < got.size() && want[at] == got[at]) ++at;
      return absl::InternalError(absl::StrCat(which, " of layer ", layer, " differs at byte ", at,
                                              " (sizes ", got.size(), " vs ", want.size(), ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace tandem
