// The global names every template sees: Jinja's range (capped at 100000 items, as the sandbox
// does), dict, namespace and joiner, and transformers' raise_exception and strftime_now.
//
// Internal to tandem_chat.
#ifndef TANDEM_CHAT_JINJA_GLOBALS_H_
#define TANDEM_CHAT_JINJA_GLOBALS_H_

#include "chat/jinja_value.h"

namespace tandem::jinja {

// Jinja's sandbox refuses larger ranges.
inline constexpr int64_t kMaxRange = 100000;

// The globals, shared by every render (the functions keep no state of their own).
const DictData& BuiltinGlobals();

}  // namespace tandem::jinja

#endif  // TANDEM_CHAT_JINJA_GLOBALS_H_
