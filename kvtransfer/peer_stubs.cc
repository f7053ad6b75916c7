#include "kvtransfer/peer_stubs.h"

#include "grpcpp/create_channel.h"
#include "server/cluster_secret.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace tandem {

std::shared_ptr<PrefillStubCache::Stub> PrefillStubCache::Get(const std::string& address) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = index_.find(address); it != index_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    return lru_.front().second;
  }
  grpc::ChannelArguments args;
  if (max_receive_ > 0) args.SetMaxReceiveMessageSize(static_cast<int>(max_receive_));
  std::shared_ptr<Stub> stub =
      worker::v1::PrefillWorker::NewStub(CreateClusterChannel(address, args));
  lru_.emplace_front(address, stub);
  index_[address] = lru_.begin();
  while (lru_.size() > capacity_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
  return stub;
}

size_t PrefillStubCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lru_.size();
}

}  // namespace tandem
