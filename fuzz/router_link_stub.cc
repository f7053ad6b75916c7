// The fuzz build compiles only the router files the request targets call (see CMakeLists.txt), not
// front_door.cc and the ~80 files under it. openai_api.cc's response writers, which no target calls,
// name front_door.cc's OpenAiFinishReason; this stands in for it so that the link succeeds. Weak, so
// the real definition wins wherever it is linked too.
#include <cstdlib>

#include "router/front_door.h"

namespace tandem::router {

__attribute__((weak)) const char* OpenAiFinishReason(FinishKind) { std::abort(); }

}  // namespace tandem::router
