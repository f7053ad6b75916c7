// Finds stop strings in streamed text and holds back text that might still become one.
//
//   StopStringMatcher m({"\n\n", "END"});
//   std::string out = m.Push(delta);  // text safe to emit now
//   if (m.stopped()) ...              // a stop string was seen; it and everything after are dropped
//   out += m.Flush();                 // at the end: release what was held back
//
// Thread safety: one stream per matcher.
#ifndef TANDEM_COMMON_STOP_STRINGS_H_
#define TANDEM_COMMON_STOP_STRINGS_H_

#include <string>
#include <string_view>
#include <vector>

namespace tandem {

class StopStringMatcher {
 public:
  explicit StopStringMatcher(std::vector<std::string> stops);

  std::string Push(std::string_view text);
  std::string Flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace tandem

#endif  // TANDEM_COMMON_STOP_STRINGS_H_
