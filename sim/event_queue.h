// EventQueue: the simulator's agenda, a min-heap of events keyed by (time, seq). seq is the order of
// Push calls, so events at the same nanosecond pop in the order they were scheduled: runs are
// deterministic and never depend on heap internals.
//
// Thread safety: none; owned by one simulator run.
#ifndef TANDEM_SIM_EVENT_QUEUE_H_
#define TANDEM_SIM_EVENT_QUEUE_H_

#include <cstddef>
#include <cstdint>
#include <queue>
#include <vector>

namespace tandem::sim {

enum class EventType : uint8_t {
  kArrival,          // payload: request index
  kPrefillDone,      // instance: prefill instance
  kTransferDone,     // instance: decode instance; payload: request index
  kDecodeStepDone,   // instance: decode instance; payload: the micro-batch that finished (0 when pp = 1)
  kColocatedStepDone,  // instance: colocated instance
  kDecodeLoopWake,     // instance: decode instance whose DistServe step loop slept (DecodeInstanceConfig::step_loop)
};

struct Event {
  int64_t time_ns = 0;
  uint64_t seq = 0;
  EventType type = EventType::kArrival;
  int32_t instance = -1;
  int64_t payload = -1;
};

class EventQueue {
 public:
  // Schedules an event; returns its seq.
  uint64_t Push(int64_t time_ns, EventType type, int32_t instance, int64_t payload) {
    heap_.push(Event{time_ns, next_seq_, type, instance, payload});
    return next_seq_++;
  }
  bool empty() const { return heap_.empty(); }
  size_t size() const { return heap_.size(); }
  const Event& top() const { return heap_.top(); }
  Event Pop() {
    Event event = heap_.top();
    heap_.pop();
    return event;
  }

 private:
  struct Later {
    bool operator()(const Event& a, const Event& b) const {
      if (a.time_ns != b.time_ns) return a.time_ns > b.time_ns;
      return a.seq > b.seq;
    }
  };
  std::priority_queue<Event, std::vector<Event>, Later> heap_;
  uint64_t next_seq_ = 0;
};

}  // namespace tandem::sim

#endif  // TANDEM_SIM_EVENT_QUEUE_H_
