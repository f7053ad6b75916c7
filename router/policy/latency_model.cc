#include "router/policy/latency_model.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace tandem::policy {
namespace {

using nlohmann::json;

absl::Status Invalid(const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("latency model ", field, ": ", what));
}

// Reads an optional number; a present field of the wrong type is an error naming it.
absl::Status ReadNumber(const json& object, const char* key, const std::string& path, double* out) {
  if (!object.contains(key)) return absl::OkStatus();
  const json& value = object.at(key);
  if (!value.is_number()) return Invalid(absl::StrCat(path, key), "must be a number");
  *out = value.get<double>();
  return absl::OkStatus();
}

absl::Status ReadInt(const json& object, const char* key, const std::string& path, int64_t* out) {
  if (!object.contains(key)) return absl::OkStatus();
  const json& value = object.at(key);
  if (!value.is_number_integer()) return Invalid(absl::StrCat(path, key), "must be an integer");
  *out = value.get<int64_t>();
  return absl::OkStatus();
}

absl::Status ReadString(const json& object, const char* key, std::string* out) {
  if (!object.contains(key)) return absl::OkStatus();
  if (!object.at(key).is_string()) return Invalid(key, "must be a string");
  *out = object.at(key).get<std::string>();
  return absl::OkStatus();
}

// {"a":..,"b":..,"c":..}, or [a, b, c] as in DistServe's profiler JSON.
absl::Status ReadCoefficients(const json& object, const char* key, bool required,
                              QuadraticCoefficients* out) {
  if (!object.contains(key)) {
    return required ? Invalid(key, "missing") : absl::OkStatus();
  }
  const json& value = object.at(key);
  if (value.is_array()) {
    if (value.size() != 3 || !value[0].is_number() || !value[1].is_number() || !value[2].is_number()) {
      return Invalid(key, "must be [a, b, c] numbers");
    }
    *out = {value[0].get<double>(), value[1].get<double>(), value[2].get<double>()};
    return absl::OkStatus();
  }
  if (!value.is_object()) return Invalid(key, "must be an object {a, b, c}");
  if (value.contains("form") && value.at("form") != "quad") {
    return Invalid(absl::StrCat(key, ".form"), absl::StrCat("unsupported form ", value.at("form").dump(),
                                                              " (supported: \"quad\")"));
  }
  const std::string path = absl::StrCat(key, ".");
  for (const char* coefficient : {"a", "b", "c"}) {
    if (!value.contains(coefficient)) return Invalid(absl::StrCat(path, coefficient), "missing");
  }
  if (absl::Status s = ReadNumber(value, "a", path, &out->a); !s.ok()) return s;
  if (absl::Status s = ReadNumber(value, "b", path, &out->b); !s.ok()) return s;
  return ReadNumber(value, "c", path, &out->c);
}

absl::StatusOr<LatencyModelParams> ParamsFromJson(const json& object) {
  if (!object.is_object()) return Invalid("profile", "must be a JSON object");
  LatencyModelParams p;
  absl::Status s;
  if (!(s = ReadString(object, "model", &p.model)).ok()) return s;
  if (!(s = ReadString(object, "gpu", &p.gpu)).ok()) return s;
  if (!(s = ReadString(object, "engine", &p.engine)).ok()) return s;
  int64_t tp = 1, pp = 1;
  if (!(s = ReadInt(object, "tp", "", &tp)).ok()) return s;
  if (!(s = ReadInt(object, "pp", "", &pp)).ok()) return s;
  p.tp = static_cast<int>(tp);
  p.pp = static_cast<int>(pp);
  if (!(s = ReadCoefficients(object, "prefill", true, &p.prefill)).ok()) return s;
  if (!(s = ReadCoefficients(object, "decode_small", true, &p.decode_small)).ok()) return s;
  p.decode_large = p.decode_small;
  if (!(s = ReadCoefficients(object, "decode_large", false, &p.decode_large)).ok()) return s;
  if (!(s = ReadInt(object, "bs_threshold", "", &p.bs_threshold)).ok()) return s;
  if (object.contains("step_overhead_ms")) {
    const json& overhead = object.at("step_overhead_ms");
    if (!overhead.is_object()) return Invalid("step_overhead_ms", "must be an object");
    double constant = 0.0;
    if (!(s = ReadNumber(overhead, "const", "step_overhead_ms.", &constant)).ok()) return s;
    p.prefill_overhead_ms = p.decode_overhead_ms = constant;
    if (!(s = ReadNumber(overhead, "prefill_const", "step_overhead_ms.", &p.prefill_overhead_ms)).ok()) {
      return s;
    }
    if (!(s = ReadNumber(overhead, "decode_const", "step_overhead_ms.", &p.decode_overhead_ms)).ok()) {
      return s;
    }
    if (!(s = ReadNumber(overhead, "per_ctx_token", "step_overhead_ms.", &p.overhead_per_ctx_token_ms))
             .ok()) {
      return s;
    }
  }
  if (!(s = ReadInt(object, "kv_capacity_tokens", "", &p.kv_capacity_tokens)).ok()) return s;
  if (object.contains("kv_transfer")) {
    const json& transfer = object.at("kv_transfer");
    if (!transfer.is_object()) return Invalid("kv_transfer", "must be an object");
    if (!(s = ReadNumber(transfer, "kv_bytes_per_token", "kv_transfer.", &p.kv_bytes_per_token)).ok()) {
      return s;
    }
    if (!(s = ReadNumber(transfer, "bandwidth_bytes_per_s", "kv_transfer.",
                         &p.link_bandwidth_bytes_per_s))
             .ok()) {
      return s;
    }
    if (!(s = ReadNumber(transfer, "latency_ms", "kv_transfer.", &p.link_latency_ms)).ok()) return s;
  }
  return p;
}

json CoefficientsToJson(const QuadraticCoefficients& q) {
  return json{{"form", "quad"}, {"a", q.a}, {"b", q.b}, {"c", q.c}};
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open latency model file"));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::StatusOr<json> ParseJson(std::string_view text) {
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return absl::InvalidArgumentError("latency model: not valid JSON");
  return parsed;
}

}  // namespace

absl::Status LatencyModel::Validate(const LatencyModelParams& p) {
  if (p.tp < 1) return Invalid("tp", absl::StrCat(p.tp, " must be >= 1"));
  if (p.pp < 1) return Invalid("pp", absl::StrCat(p.pp, " must be >= 1"));
  if (p.bs_threshold < 1) return Invalid("bs_threshold", absl::StrCat(p.bs_threshold, " must be >= 1"));
  if (p.validate_max_tokens < 1 || p.validate_max_batch < 1) {
    return Invalid("validate range", "must be >= 1");
  }
  if (p.prefill_overhead_ms < 0 || p.decode_overhead_ms < 0 || p.overhead_per_ctx_token_ms < 0) {
    return Invalid("step_overhead_ms", "overheads must be >= 0");
  }
  if (p.kv_capacity_tokens < 0) return Invalid("kv_capacity_tokens", "must be >= 0");
  if (p.kv_bytes_per_token < 0) return Invalid("kv_transfer.kv_bytes_per_token", "must be >= 0");
  if (p.link_bandwidth_bytes_per_s < 0) return Invalid("kv_transfer.bandwidth_bytes_per_s", "must be >= 0");
  if (p.link_latency_ms < 0) return Invalid("kv_transfer.latency_ms", "must be >= 0");

  // Prefill of one sequence of l tokens: a + b*l + c*l^2 is positive on [1, L] when it is positive at
  // both ends and at the vertex; it is non-decreasing when its slope b + 2*c*l is >= 0 at both ends.
  const double max_tokens = static_cast<double>(p.validate_max_tokens);
  const QuadraticCoefficients& q = p.prefill;
  for (double l : {1.0, max_tokens}) {
    const double t = q.a + q.b * l + q.c * l * l + p.prefill_overhead_ms;
    if (!(t > 0)) {
      return Invalid("prefill", absl::StrCat("step time ", t, " ms at ", l, " tokens is not positive"));
    }
    if (q.b + 2 * q.c * l < 0) {
      return Invalid("prefill.c", absl::StrCat(q.c, " makes prefill time decrease at ", l,
                                               " tokens (slope ", q.b + 2 * q.c * l, " ms/token)"));
    }
  }
  // Decode: linear in sum(ctx) and B within a regime, so non-decreasing iff b, c >= 0; positive iff
  // positive at the smallest point of each regime.
  const struct {
    const char* name;
    const QuadraticCoefficients* q;
    int64_t min_batch;
  } regimes[] = {{"decode_small", &p.decode_small, 1}, {"decode_large", &p.decode_large, p.bs_threshold}};
  for (const auto& regime : regimes) {
    if (regime.min_batch > p.validate_max_batch && regime.q == &p.decode_large) continue;
    if (regime.q->b < 0) {
      return Invalid(absl::StrCat(regime.name, ".b"),
                     absl::StrCat(regime.q->b, " makes decode time decrease with context length"));
    }
    if (regime.q->c < 0) {
      return Invalid(absl::StrCat(regime.name, ".c"),
                     absl::StrCat(regime.q->c, " makes decode time decrease with batch size"));
    }
    const double b = static_cast<double>(regime.min_batch);
    const double t = regime.q->a + regime.q->b * b + regime.q->c * b + p.decode_overhead_ms;
    if (!(t > 0)) {
      return Invalid(regime.name, absl::StrCat("step time ", t, " ms at batch ", regime.min_batch,
                                               " is not positive"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<LatencyModel> LatencyModel::Create(LatencyModelParams params) {
  if (absl::Status s = Validate(params); !s.ok()) return s;
  return LatencyModel(std::move(params));
}

absl::StatusOr<LatencyModel> LatencyModel::FromJson(std::string_view json_text) {
  absl::StatusOr<json> parsed = ParseJson(json_text);
  if (!parsed.ok()) return parsed.status();
  absl::StatusOr<LatencyModelParams> params = ParamsFromJson(*parsed);
  if (!params.ok()) return params.status();
  return Create(*std::move(params));
}

absl::StatusOr<std::vector<LatencyModel>> LatencyModel::ListFromJson(std::string_view json_text) {
  absl::StatusOr<json> parsed = ParseJson(json_text);
  if (!parsed.ok()) return parsed.status();
  std::vector<LatencyModel> models;
  if (parsed->is_object() && parsed->contains("profiles")) {
    const json& list = parsed->at("profiles");
    if (!list.is_array()) return Invalid("profiles", "must be an array");
    for (size_t i = 0; i < list.size(); ++i) {
      absl::StatusOr<LatencyModelParams> params = ParamsFromJson(list[i]);
      if (params.ok()) {
        absl::StatusOr<LatencyModel> model = Create(*std::move(params));
        if (model.ok()) {
          models.push_back(*std::move(model));
          continue;
        }
        params = model.status();
      }
      return absl::InvalidArgumentError(absl::StrCat("profiles[", i, "]: ", params.status().message()));
    }
    return models;
  }
  absl::StatusOr<LatencyModelParams> params = ParamsFromJson(*parsed);
  if (!params.ok()) return params.status();
  absl::StatusOr<LatencyModel> model = Create(*std::move(params));
  if (!model.ok()) return model.status();
  models.push_back(*std::move(model));
  return models;
}

absl::StatusOr<LatencyModel> LatencyModel::FromFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadWholeFile(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<LatencyModel> model = FromJson(*text);
  if (!model.ok()) {
    return absl::Status(model.status().code(), absl::StrCat(path, ": ", model.status().message()));
  }
  return model;
}

absl::StatusOr<std::vector<LatencyModel>> LatencyModel::ListFromFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadWholeFile(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<std::vector<LatencyModel>> models = ListFromJson(*text);
  if (!models.ok()) {
    return absl::Status(models.status().code(), absl::StrCat(path, ": ", models.status().message()));
  }
  return models;
}

std::string LatencyModel::ToJson() const {
  const LatencyModelParams& p = params_;
  json out = {
      {"model", p.model},
      {"gpu", p.gpu},
      {"engine", p.engine},
      {"tp", p.tp},
      {"pp", p.pp},
      {"prefill", CoefficientsToJson(p.prefill)},
      {"decode_small", CoefficientsToJson(p.decode_small)},
      {"decode_large", CoefficientsToJson(p.decode_large)},
      {"bs_threshold", p.bs_threshold},
      {"step_overhead_ms",
       {{"prefill_const", p.prefill_overhead_ms},
        {"decode_const", p.decode_overhead_ms},
        {"per_ctx_token", p.overhead_per_ctx_token_ms}}},
      {"kv_capacity_tokens", p.kv_capacity_tokens},
      {"kv_transfer",
       {{"kv_bytes_per_token", p.kv_bytes_per_token},
        {"bandwidth_bytes_per_s", p.link_bandwidth_bytes_per_s},
        {"latency_ms", p.link_latency_ms}}},
  };
  return out.dump(2);
}

absl::Status LatencyModel::SaveToFile(const std::string& path) const {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::PermissionDeniedError(absl::StrCat(path, ": cannot open for writing"));
  out << ToJson() << "\n";
  if (!out) return absl::DataLossError(absl::StrCat(path, ": write failed"));
  return absl::OkStatus();
}

double LatencyModel::PrefillMsFromSums(double sum_len, double sum_len_squared) const {
  const QuadraticCoefficients& q = params_.prefill;
  return (q.a + q.b * sum_len + q.c * sum_len_squared) / params_.pp + params_.prefill_overhead_ms +
         params_.overhead_per_ctx_token_ms * sum_len;
}

double LatencyModel::PrefillMs(std::span<const int64_t> prompt_lens) const {
  double sum = 0.0, sum_squared = 0.0;
  for (int64_t len : prompt_lens) {
    const double l = static_cast<double>(len);
    sum += l;
    sum_squared += l * l;
  }
  return PrefillMsFromSums(sum, sum_squared);
}

double LatencyModel::DecodeStepMs(int64_t batch_size, int64_t sum_context_tokens) const {
  const QuadraticCoefficients& q =
      batch_size < params_.bs_threshold ? params_.decode_small : params_.decode_large;
  const double ctx = static_cast<double>(sum_context_tokens);
  return (q.a + q.b * ctx + q.c * static_cast<double>(batch_size)) / params_.pp +
         params_.decode_overhead_ms + params_.overhead_per_ctx_token_ms * ctx;
}

double LatencyModel::DecodeTokenMs(int64_t batch_size, int64_t sum_context_tokens) const {
  const int64_t pp = std::max(1, params_.pp);
  if (pp == 1 || batch_size < 1) return DecodeStepMs(batch_size, sum_context_tokens);
  const int64_t micro_batch = (batch_size + pp - 1) / pp;
  const int64_t micro_context = sum_context_tokens * micro_batch / batch_size;
  return static_cast<double>(pp) * DecodeStepMs(micro_batch, micro_context);
}

double LatencyModel::KvTransferMs(double bytes) const {
  const double wire_ms =
      params_.link_bandwidth_bytes_per_s > 0 ? bytes / params_.link_bandwidth_bytes_per_s * 1e3 : 0.0;
  return params_.link_latency_ms + wire_ms;
}

}  // namespace tandem::policy
