// The checks both request fuzzers (openai_request_fuzzer.cc, generate_request_fuzzer.cc) apply to
// PrepareGenerateRequest, the validation every public request goes through, gRPC or HTTP.
#ifndef TANDEM_FUZZ_REQUEST_CHECKS_H_
#define TANDEM_FUZZ_REQUEST_CHECKS_H_

#include "absl/status/status.h"
#include "proto/tandem.pb.h"
#include "router/request_validation.h"

namespace tandem::fuzz {

// The model the fuzzers serve: the byte-level test tokenizer's vocabulary, a 96-token context (small,
// so that the length checks are reachable), its </s> as EOS.
const router::ServedModel& FuzzServedModel();

// Runs PrepareGenerateRequest on `request` and checks what it returns:
//   - an error is InvalidArgument (NotFound for an unknown model), short (errors travel in gRPC
//     metadata and HTTP bodies), and ErrorJson renders it as valid JSON with status 400 or 404;
//   - a prepared request keeps every documented bound: prompt ids in [0, vocab_size) and equal to the
//     tokenizer's encoding of a text prompt; 1 <= max_tokens and prompt + max_tokens <= context;
//     sampling parameters valid; stop strings non-empty, bounded and valid UTF-8; stop ids in the vocab
//     and the EOS ids among them unless ignore_eos; SLOs finite and >= 0.
// Also checks FindInvalidUtf8 against IsValidUtf8 on the prompt and the stop strings.
void CheckPrepared(const v1::GenerateRequest& request);

// The checks on an error of the HTTP request parsers, or of validation.
void CheckRequestError(const absl::Status& status);

}  // namespace tandem::fuzz

#endif  // TANDEM_FUZZ_REQUEST_CHECKS_H_
