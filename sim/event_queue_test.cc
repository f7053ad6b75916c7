#include "sim/event_queue.h"

#include "gtest/gtest.h"

namespace tandem::sim {
namespace {

TEST(EventQueueTest, OrdersByTimeThenPushOrder) {
  EventQueue q;
  q.Push(30, EventType::kArrival, -1, 0);
  q.Push(10, EventType::kDecodeStepDone, 0, 1);
  q.Push(10, EventType::kArrival, -1, 2);  // same time: after the one pushed first
  q.Push(20, EventType::kPrefillDone, 0, 3);
  q.Push(10, EventType::kTransferDone, 1, 4);
  std::vector<int64_t> order;
  while (!q.empty()) order.push_back(q.Pop().payload);
  EXPECT_EQ(order, (std::vector<int64_t>{1, 2, 4, 3, 0}));
}

TEST(EventQueueTest, ManyTiesKeepInsertionOrder) {
  EventQueue q;
  for (int i = 0; i < 1000; ++i) q.Push(5, EventType::kArrival, -1, i);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(q.Pop().payload, i);
}

TEST(EventQueueTest, EventsPushedWhilePoppingAtSameTimeComeAfter) {
  EventQueue q;
  q.Push(0, EventType::kArrival, -1, 0);
  q.Push(0, EventType::kArrival, -1, 1);
  const Event first = q.Pop();
  EXPECT_EQ(first.payload, 0);
  q.Push(0, EventType::kPrefillDone, 0, 2);  // scheduled "now" by the handler
  EXPECT_EQ(q.Pop().payload, 1);
  EXPECT_EQ(q.Pop().payload, 2);
}

}  // namespace
}  // namespace tandem::sim
