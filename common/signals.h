// Termination signals for daemons: block SIGINT and SIGTERM in every thread (call before starting any),
// then wait for one on the main thread and shut down in order.
#ifndef TANDEM_COMMON_SIGNALS_H_
#define TANDEM_COMMON_SIGNALS_H_

namespace tandem {

void BlockTerminationSignals();
// Returns the signal number received (SIGINT or SIGTERM).
int WaitForTerminationSignal();

}  // namespace tandem

#endif  // TANDEM_COMMON_SIGNALS_H_
