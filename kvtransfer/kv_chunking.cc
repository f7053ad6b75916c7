#include "kvtransfer/kv_chunking.h"

#include <algorithm>
#include <iterator>

#include "absl/strings/str_cat.h"

namespace tandem {
namespace {

std::string Range(int64_t begin, int64_t end) {  // [begin, end) printed inclusive
  return absl::StrCat(begin, "..", end - 1);
}

}  // namespace

int32_t TokensPerChunk(const KvLayout& layout, int64_t max_chunk_bytes) {
  if (max_chunk_bytes <= 0) max_chunk_bytes = kDefaultMaxChunkBytes;
  max_chunk_bytes = std::min(max_chunk_bytes, kMaxChunkBytesLimit);
  const int64_t per_token = 2 * layout.bytes_per_token_per_layer();
  if (per_token <= 0) return 1;
  return static_cast<int32_t>(std::clamp<int64_t>(max_chunk_bytes / per_token, 1, INT32_MAX));
}

absl::Status CheckPullStart(const KvHandle& handle, const KvSink& sink, absl::Time deadline) {
  if (absl::Now() >= deadline) {
    return absl::DeadlineExceededError(
        absl::StrCat("kv pull of lease ", handle.lease_id, ": deadline already passed"));
  }
  if (absl::Status s = CheckSameLayout(sink.layout(), handle.layout); !s.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("kv pull of lease ", handle.lease_id,
                                                      ": handle vs sink: ", s.message()));
  }
  if (sink.num_tokens() != handle.num_tokens) {
    return absl::InvalidArgumentError(absl::StrCat("kv pull of lease ", handle.lease_id,
                                                   ": the sink expects ", sink.num_tokens(),
                                                   " tokens, handle.num_tokens is ",
                                                   handle.num_tokens));
  }
  return absl::OkStatus();
}

CoverageTracker::CoverageTracker(int32_t num_layers, int32_t num_tokens)
    : num_layers_(num_layers), num_tokens_(num_tokens), covered_(std::max(num_layers, 0)) {}

absl::Status CoverageTracker::Add(int32_t layer, int32_t token_begin, int32_t num_tokens) {
  if (layer < 0 || layer >= num_layers_) {
    return absl::DataLossError(absl::StrCat("KV chunk layer ", layer, " out of range: the layout has ",
                                            num_layers_, " layers"));
  }
  const int64_t begin = token_begin;
  const int64_t end = begin + num_tokens;
  if (num_tokens <= 0 || begin < 0 || end > num_tokens_) {
    return absl::DataLossError(absl::StrCat("KV chunk layer ", layer, " tokens [", begin, ", ", end,
                                            ") outside the ", num_tokens_, " tokens expected"));
  }
  auto& intervals = covered_[layer];
  auto next = intervals.upper_bound(token_begin);
  const bool overlaps_prev = next != intervals.begin() && std::prev(next)->second > begin;
  const bool overlaps_next = next != intervals.end() && next->first < end;
  if (overlaps_prev || overlaps_next) {
    return absl::DataLossError(
        absl::StrCat("KV chunk layer ", layer, " tokens ", Range(begin, end), " written twice"));
  }
  int32_t new_begin = token_begin;
  int32_t new_end = static_cast<int32_t>(end);
  if (next != intervals.begin() && std::prev(next)->second == begin) {
    auto prev = std::prev(next);
    new_begin = prev->first;
    intervals.erase(prev);
  }
  if (next != intervals.end() && next->first == end) {
    new_end = next->second;
    intervals.erase(next);
  }
  intervals.emplace(new_begin, new_end);
  return absl::OkStatus();
}

absl::Status CoverageTracker::CheckComplete() const {
  int64_t missing = 0;
  std::string first;
  for (int32_t layer = 0; layer < num_layers_; ++layer) {
    int32_t cursor = 0;
    auto note_gap = [&](int32_t begin, int32_t end) {
      if (begin >= end) return;
      missing += end - begin;
      if (first.empty()) first = absl::StrCat("layer ", layer, " tokens ", Range(begin, end));
    };
    for (const auto& [begin, end] : covered_[layer]) {
      note_gap(cursor, begin);
      cursor = end;
    }
    note_gap(cursor, num_tokens_);
  }
  if (missing == 0) return absl::OkStatus();
  return absl::DataLossError(absl::StrCat("incomplete KV transfer: ", first, " missing (",
                                          missing, " of ", int64_t{num_layers_} * num_tokens_,
                                          " layer-tokens missing in all)"));
}

ValidatingKvSink::ValidatingKvSink(KvSink& inner)
    : inner_(inner), coverage_(inner.layout().num_layers, inner.num_tokens()) {}

absl::Status ValidatingKvSink::WriteTokens(int32_t layer, int32_t token_begin, int32_t num_tokens,
                                           const void* k, const void* v) {
  const int64_t size = int64_t{num_tokens} * layout().bytes_per_token_per_layer();
  if (num_tokens <= 0) return coverage_.Add(layer, token_begin, num_tokens);
  return WriteChunk(layer, token_begin, num_tokens,
                    absl::string_view(static_cast<const char*>(k), size),
                    absl::string_view(static_cast<const char*>(v), size));
}

absl::Status ValidatingKvSink::WriteChunk(int32_t layer, int32_t token_begin, int32_t num_tokens,
                                          absl::string_view k, absl::string_view v) {
  const int64_t want = int64_t{num_tokens} * layout().bytes_per_token_per_layer();
  const auto check_size = [&](const char* name, size_t got) -> absl::Status {
    if (static_cast<int64_t>(got) == want) return absl::OkStatus();
    return absl::DataLossError(absl::StrCat("KV chunk layer ", layer, " tokens [", token_begin,
                                            ", ", int64_t{token_begin} + num_tokens, "): ", name,
                                            " is ", got, " bytes, expected ", want));
  };
  if (absl::Status s = check_size("k", k.size()); !s.ok()) return s;
  if (absl::Status s = check_size("v", v.size()); !s.ok()) return s;
  if (absl::Status s = coverage_.Add(layer, token_begin, num_tokens); !s.ok()) return s;
  if (absl::Status s = inner_.WriteTokens(layer, token_begin, num_tokens, k.data(), v.data());
      !s.ok()) {
    return s;
  }
  bytes_ += 2 * want;
  ++chunks_;
  return absl::OkStatus();
}

}  // namespace tandem
