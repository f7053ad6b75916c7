#include "chat/jinja_context.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace tandem::jinja {
namespace {

constexpr char kRaisedPayload[] = "tandem.chat/raise_exception";

}  // namespace

absl::CivilSecond LocalNow() { return absl::ToCivilSecond(absl::Now(), absl::LocalTimeZone()); }

RenderContext::RenderContext(const RenderLimits& limits, Clock clock) : limits_(limits), clock_(std::move(clock)) {}

RenderContext::~RenderContext() {
  // Namespaces may reference each other (ns.a = ns); clearing them all breaks every cycle, and
  // destroying their contents one namespace at a time keeps destruction shallow.
  for (const auto& ns : namespaces_) {
    ns->attributes = DictData();
    ns->call = nullptr;
  }
}

absl::Status RenderContext::Charge(int64_t steps) {
  steps_ += steps;
  if (steps_ > limits_.max_steps) {
    return absl::ResourceExhaustedError(
        absl::StrCat("template exceeded its work limit of ", limits_.max_steps, " steps (loop iterations and items)"));
  }
  return absl::OkStatus();
}

absl::Status RenderContext::CheckSize(size_t bytes) const {
  if (bytes > limits_.max_output_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("template output or string value exceeds the limit of ", limits_.max_output_bytes, " bytes"));
  }
  return absl::OkStatus();
}

absl::Status RenderContext::CheckValueDepth(const Value& value) const {
  if (value.depth() > limits_.max_value_depth) {
    return absl::ResourceExhaustedError(
        absl::StrCat("value nested deeper than the limit of ", limits_.max_value_depth, " levels"));
  }
  return absl::OkStatus();
}

std::shared_ptr<NamespaceData> RenderContext::NewNamespace() {
  auto ns = std::make_shared<NamespaceData>();
  namespaces_.push_back(ns);
  return ns;
}

absl::StatusOr<Value> RenderContext::Call(const Value& callee, CallArgs args) {
  if (callee.kind() == Value::Kind::kCallable) return callee.callable().function(*this, args);
  if (callee.is_namespace() && callee.ns().call) return callee.ns().call(*this, args);
  if (callee.is_undefined()) return UndefinedError(callee);
  return TypeError(absl::StrCat("'", TypeName(callee), "' object is not callable"));
}

absl::Status TemplateRaisedError(std::string message) {
  absl::Status status = absl::InvalidArgumentError(message);
  status.SetPayload(kRaisedPayload, absl::Cord("1"));
  return status;
}

bool IsTemplateRaisedError(const absl::Status& status) { return status.GetPayload(kRaisedPayload).has_value(); }

absl::Status UndefinedError(const Value& undefined) {
  const std::string& hint = undefined.undefined_hint();
  return absl::InvalidArgumentError(hint.empty() ? "value is undefined" : hint);
}

absl::Status TypeError(std::string message) { return absl::InvalidArgumentError(std::move(message)); }

ArgReader::ArgReader(const CallArgs& args, std::string function, std::vector<std::string> params)
    : values_(params.size()), given_(params.size(), false) {
  if (args.positional.size() > params.size()) {
    status_ = TypeError(
        absl::StrCat(function, "() takes at most ", params.size(), " argument(s), ", args.positional.size(), " given"));
    return;
  }
  for (size_t i = 0; i < args.positional.size(); ++i) {
    values_[i] = args.positional[i];
    given_[i] = true;
  }
  for (const auto& [name, value] : args.keywords) {
    size_t index = 0;
    while (index < params.size() && params[index] != name) ++index;
    if (index == params.size()) {
      status_ = TypeError(absl::StrCat(function, "() got an unexpected keyword argument '", name, "'"));
      return;
    }
    if (given_[index]) {
      status_ = TypeError(absl::StrCat(function, "() got multiple values for argument '", name, "'"));
      return;
    }
    values_[index] = value;
    given_[index] = true;
  }
}

Value ArgReader::Get(size_t index, Value fallback) const {
  return index < values_.size() && given_[index] ? values_[index] : fallback;
}

bool ArgReader::Has(size_t index) const { return index < given_.size() && given_[index]; }

}  // namespace tandem::jinja
