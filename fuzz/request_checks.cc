#include "fuzz/request_checks.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_support.h"
#include "nlohmann/json.hpp"
#include "router/openai_api.h"
#include "types/sampling.h"

namespace tandem::fuzz {
namespace {

// Longer errors are echoing their input.
constexpr size_t kMaxErrorBytes = 512;

void CheckUtf8Agrees(const std::string& text) {
  TANDEM_FUZZ_CHECK((router::FindInvalidUtf8(text) < 0) == IsValidUtf8(text),
                    absl::StrCat("FindInvalidUtf8 = ", router::FindInvalidUtf8(text),
                                 ", IsValidUtf8 = ", IsValidUtf8(text)));
}

}  // namespace

const router::ServedModel& FuzzServedModel() {
  static const router::ServedModel* const model = [] {
    auto* served = new router::ServedModel();
    served->name = "tiny";
    served->max_context = 96;
    served->vocab_size = ByteLevelTokenizer().vocab_size();
    served->eos_token_ids = {*ByteLevelTokenizer().TokenToId("</s>")};
    served->default_max_tokens = 64;
    return served;
  }();
  return *model;
}

void CheckRequestError(const absl::Status& status) {
  TANDEM_FUZZ_CHECK(!status.ok(), "an error that is OK");
  TANDEM_FUZZ_CHECK(absl::IsInvalidArgument(status) || absl::IsNotFound(status), status.ToString());
  TANDEM_FUZZ_CHECK(status.message().size() <= kMaxErrorBytes,
                    absl::StrCat(status.message().size(), "-byte error: ", status.message().substr(0, 200)));
  const int http = router::HttpStatusFor(status);
  TANDEM_FUZZ_CHECK(http == 400 || http == 404, absl::StrCat("HTTP ", http));
  const std::string body = router::ErrorJson(status);
  const nlohmann::json parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  TANDEM_FUZZ_CHECK(!parsed.is_discarded() && parsed.contains("error"), body);
}

void CheckPrepared(const v1::GenerateRequest& request) {
  const router::ServedModel& model = FuzzServedModel();
  const Tokenizer& tokenizer = ByteLevelTokenizer();
  if (request.input_case() == v1::GenerateRequest::kPrompt) CheckUtf8Agrees(request.prompt());
  for (const std::string& stop : request.stop()) CheckUtf8Agrees(stop);

  absl::StatusOr<router::PreparedRequest> prepared =
      router::PrepareGenerateRequest(request, model, tokenizer);
  if (!prepared.ok()) {
    CheckRequestError(prepared.status());
    return;
  }
  const router::PreparedRequest& p = *prepared;
  const int64_t prompt_len = static_cast<int64_t>(p.prompt.size());
  TANDEM_FUZZ_CHECK(prompt_len >= 1, "empty prompt accepted");
  for (int32_t id : p.prompt) {
    TANDEM_FUZZ_CHECK(id >= 0 && id < model.vocab_size, absl::StrCat("prompt id ", id));
  }
  if (request.input_case() == v1::GenerateRequest::kPrompt) {
    absl::StatusOr<std::vector<int32_t>> ids = tokenizer.Encode(request.prompt(), true);
    TANDEM_FUZZ_CHECK(ids.ok() && *ids == p.prompt, "the prompt's ids are not its encoding");
  } else {
    TANDEM_FUZZ_CHECK(std::equal(p.prompt.begin(), p.prompt.end(), request.prompt_token_ids().ids().begin(),
                                 request.prompt_token_ids().ids().end()),
                      "the prompt's ids are not the request's");
  }
  TANDEM_FUZZ_CHECK(p.max_tokens >= 1 && prompt_len + p.max_tokens <= model.max_context,
                    absl::StrCat(prompt_len, " prompt tokens + max_tokens ", p.max_tokens, " > context ",
                                 model.max_context));
  if (request.has_max_tokens()) TANDEM_FUZZ_CHECK(p.max_tokens == request.max_tokens(), "max_tokens changed");
  const std::string sampling_error = SamplingParamsError(p.sampling, model.vocab_size);
  TANDEM_FUZZ_CHECK(sampling_error.empty(), sampling_error);
  TANDEM_FUZZ_CHECK(p.sampling.top_p > 0 && p.sampling.top_p <= 1, absl::StrCat("top_p ", p.sampling.top_p));
  TANDEM_FUZZ_CHECK(p.stop.size() <= static_cast<size_t>(router::kMaxStopStrings), "too many stop strings");
  for (const std::string& stop : p.stop) {
    TANDEM_FUZZ_CHECK(
        !stop.empty() && stop.size() <= static_cast<size_t>(router::kMaxStopStringBytes) && IsValidUtf8(stop),
        absl::StrCat("stop string of ", stop.size(), " bytes"));
  }
  TANDEM_FUZZ_CHECK(p.stop_token_ids.size() <= router::kMaxStopTokenIds + model.eos_token_ids.size(),
                    "too many stop ids");
  for (int32_t id : p.stop_token_ids) {
    TANDEM_FUZZ_CHECK(id >= 0 && id < model.vocab_size, absl::StrCat("stop id ", id));
  }
  if (!request.ignore_eos()) {
    for (int32_t eos : model.eos_token_ids) {
      TANDEM_FUZZ_CHECK(
          std::find(p.stop_token_ids.begin(), p.stop_token_ids.end(), eos) != p.stop_token_ids.end(),
          "EOS is not a stop id");
    }
  }
  for (double slo : {p.ttft_slo_ms, p.tpot_slo_ms}) {
    TANDEM_FUZZ_CHECK(std::isfinite(slo) && slo >= 0, absl::StrCat("SLO ", slo));
  }
}

}  // namespace tandem::fuzz
