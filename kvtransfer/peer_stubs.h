// A bounded cache of PrefillWorker stubs (one channel each) by address, least recently used evicted.
// Decode workers dial the sources named in KV handles; an unbounded map kept one channel per distinct
// source forever (3000 sources took a decode worker from 38 MB to 180 MB; issue 11, item 3).
//
// Thread safety: thread-safe. A stub handed out stays valid after its eviction (shared ownership).
#ifndef TANDEM_KVTRANSFER_PEER_STUBS_H_
#define TANDEM_KVTRANSFER_PEER_STUBS_H_

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "proto/worker.grpc.pb.h"

namespace tandem {

class PrefillStubCache {
 public:
  using Stub = worker::v1::PrefillWorker::Stub;

  // max_receive_message_bytes: the channels' receive limit (0: gRPC's default).
  explicit PrefillStubCache(size_t capacity, int64_t max_receive_message_bytes = 0)
      : capacity_(capacity == 0 ? 1 : capacity), max_receive_(max_receive_message_bytes) {}

  std::shared_ptr<Stub> Get(const std::string& address);
  size_t size() const;

 private:
  const size_t capacity_;
  const int64_t max_receive_;
  mutable std::mutex mu_;
  std::list<std::pair<std::string, std::shared_ptr<Stub>>> lru_;  // most recent first
  std::unordered_map<std::string, decltype(lru_)::iterator> index_;
};

}  // namespace tandem

#endif  // TANDEM_KVTRANSFER_PEER_STUBS_H_
