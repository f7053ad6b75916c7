// Python string formatting that templates reach: printf-style `fmt % args` (and the `format`
// filter), str.format(), and strftime() in the C locale for strftime_now().
//
// Internal to tandem_chat.
#ifndef TANDEM_CHAT_JINJA_FORMAT_H_
#define TANDEM_CHAT_JINJA_FORMAT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "chat/jinja_context.h"
#include "chat/jinja_value.h"

namespace tandem::jinja {

// `format % args`: a tuple supplies positional values, a dict %(name)s values, anything else is
// the single value. Conversions s r a d i u o x X e E f F g G c and %%, with flags, width and
// precision (including *).
absl::StatusOr<std::string> PercentFormat(RenderContext& context, const std::string& format, const Value& args);

// `format.format(*args, **kwargs)`: {} {0} {name} fields with .attr and [key] lookups, !s/!r
// conversions and the format-spec mini-language ([[fill]align][sign][#][0][width][,][.prec][type]).
absl::StatusOr<std::string> StrFormat(RenderContext& context, const std::string& format, const CallArgs& args);

// time.strftime in the C locale ("%d %b %Y" gives "07 Mar 2025"), with glibc's '-' (no padding)
// and '_' (space padding) flags. Unknown directives are copied through.
std::string Strftime(const std::string& format, absl::CivilSecond time);

}  // namespace tandem::jinja

#endif  // TANDEM_CHAT_JINJA_FORMAT_H_
