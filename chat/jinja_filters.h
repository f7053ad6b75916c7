// Jinja's builtin filters plus transformers' `tojson`.
//
// Text and scalars (jinja_filters.cc): abs, attr, capitalize, center, d/default, e/escape,
// float, forceescape, format, indent, int, lower, pprint, replace, round, safe, string,
// striptags, title, tojson, trim, truncate, upper, wordcount.
// Collections (jinja_sequence_filters.cc): batch, count/length, dictsort, first, items, join,
// last, list, map, max, min, reject, rejectattr, reverse, select, selectattr, slice, sort, sum,
// unique.
//
// Internal to tandem_chat.
#ifndef TANDEM_CHAT_JINJA_FILTERS_H_
#define TANDEM_CHAT_JINJA_FILTERS_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "chat/jinja_context.h"
#include "chat/jinja_value.h"

namespace tandem::jinja {

using FilterFunction = absl::StatusOr<Value> (*)(RenderContext& context, const Value& input, const CallArgs& args);

bool HasFilter(std::string_view name);

// Applies filter `name` to `input`; an unknown name is "No filter named 'x'.".
absl::StatusOr<Value> ApplyFilter(RenderContext& context, std::string_view name, const Value& input,
                                  const CallArgs& args);

// The collection filters, registered by jinja_filters.cc.
absl::StatusOr<Value> FilterBatch(RenderContext& context, const Value& input, const CallArgs& args);
absl::StatusOr<Value> FilterLength(RenderContext& context, const Value& input, const CallArgs& args);
absl::StatusOr<Value> FilterDictSort(RenderContext& context, const Value& input, const CallArgs& args);
absl::StatusOr<Value> FilterFirst(RenderContext& context, const Value& input, const CallArgs& args);
absl::StatusOr<Value> FilterItems(RenderContext& context, const Value& input, const CallArgs& args);
absl::StatusOr<Value> FilterJoin(RenderContext& context, const Value& input, const CallArgs& args);
absl::StatusOr<Value> FilterLast(RenderContext& context, const Value& input, const CallArgs& args);
absl::StatusOr<Value> FilterList(RenderContext& context, const Value& input, const CallArgs& args);
absl::StatusOr<Value> FilterMap(RenderContext& context, const Value& input, const CallArgs& args);
absl::StatusOr<Value> FilterMax(RenderContext& context, const Value& input, const CallArgs& args);
absl::StatusOr<Value> FilterMin(RenderContext& context, const Value& input, const CallArgs& args);
absl::StatusOr<Value> FilterReject(RenderContext& context, const Value& input, const CallArgs& args);
absl::StatusOr<Value> FilterRejectAttr(RenderContext& context, const Value& input, const CallArgs& args);
absl::StatusOr<Value> FilterReverse(RenderContext& context, const Value& input, const CallArgs& args);
absl::StatusOr<Value> FilterSelect(RenderContext& context, const Value& input, const CallArgs& args);
absl::StatusOr<Value> FilterSelectAttr(RenderContext& context, const Value& input, const CallArgs& args);
absl::StatusOr<Value> FilterSlice(RenderContext& context, const Value& input, const CallArgs& args);
absl::StatusOr<Value> FilterSort(RenderContext& context, const Value& input, const CallArgs& args);
absl::StatusOr<Value> FilterSum(RenderContext& context, const Value& input, const CallArgs& args);
absl::StatusOr<Value> FilterUnique(RenderContext& context, const Value& input, const CallArgs& args);

}  // namespace tandem::jinja

#endif  // TANDEM_CHAT_JINJA_FILTERS_H_
