// gRPC KV transfer throughput next to a plain TCP copy over loopback, measured in the same run.
//
// Each iteration pulls one lease of `size` MiB of K+V through GrpcKvTransport from a real loopback
// PullKv server (FakeKvSource -> NewPullKvReactor -> RecordingKvSink) and copies the same number of
// bytes through a connected TCP socket pair on 127.0.0.1 (send() from one buffer, a reader thread
// recv()s into another). The two alternate inside the iteration, so a noisy machine slows both.
//
// Counters: GBps (gRPC), tcp_GBps, ratio_vs_tcp (gRPC / TCP). Arguments: size in MiB, chunk in KiB.
// The layout is LLaMA-3-8B-like: 32 layers, 8 KV heads, head_dim 128, BF16 (128 KiB of K+V a token).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "benchmark/benchmark.h"
#include "kvtransfer/fake_kv.h"
#include "kvtransfer/grpc_transport.h"
#include "kvtransfer/pull_kv_test_server.h"

namespace tandem {
namespace {

KvLayout BenchLayout() {
  KvLayout layout;
  layout.model_fingerprint = "bench";
  layout.num_layers = 32;
  layout.num_kv_heads = 8;
  layout.head_dim = 128;
  layout.dtype = DType::kBF16;
  return layout;
}

// A connected TCP pair on 127.0.0.1 and a reader thread that drains `n` bytes per Copy().
class TcpLoopback {
 public:
  TcpLoopback() {
    const int listener = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        listen(listener, 1) != 0 ||
        getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      std::perror("tcp loopback listener");
      std::abort();
    }
    writer_ = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(writer_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      std::perror("tcp loopback connect");
      std::abort();
    }
    reader_ = accept(listener, nullptr, nullptr);
    close(listener);
    thread_ = std::thread([this] { ReadLoop(); });
  }
  ~TcpLoopback() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    thread_.join();
    close(writer_);
    close(reader_);
  }

  // Sends `size` bytes from `src`; returns once the reader has them all in `dst`.
  void Copy(const char* src, char* dst, size_t size) {
    {
      absl::MutexLock lock(&mu_);
      dst_ = dst;
      pending_ = size;
    }
    for (size_t sent = 0; sent < size;) {
      const ssize_t n = send(writer_, src + sent, size - sent, 0);
      if (n <= 0) std::abort();
      sent += n;
    }
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(+[](size_t* pending) { return *pending == 0; }, &pending_));
  }

 private:
  void ReadLoop() {
    while (true) {
      char* dst;
      size_t size;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(
            +[](TcpLoopback* self) { return self->stop_ || self->pending_ > 0; }, this));
        if (stop_) return;
        dst = dst_;
        size = pending_;
      }
      for (size_t got = 0; got < size;) {
        const ssize_t n = recv(reader_, dst + got, size - got, 0);
        if (n <= 0) std::abort();
        got += n;
      }
      absl::MutexLock lock(&mu_);
      pending_ = 0;
    }
  }

  int writer_ = -1;
  int reader_ = -1;
  std::thread thread_;
  absl::Mutex mu_;
  char* dst_ = nullptr;
  size_t pending_ = 0;
  bool stop_ = false;
};

// One server, one source, one TCP pair for the whole run.
struct Fixture {
  Fixture() : source(BenchLayout()) {
    auto started = PullKvTestServer::Start(&source);
    if (!started.ok()) std::abort();
    server = std::move(started).value();
  }
  FakeKvSource source;
  std::unique_ptr<PullKvTestServer> server;
  TcpLoopback tcp;
};

Fixture& GetFixture() {
  static auto* fixture = new Fixture();
  return *fixture;
}

void BM_KvTransfer(benchmark::State& state) {
  Fixture& fixture = GetFixture();
  const KvLayout layout = BenchLayout();
  const int64_t bytes = state.range(0) << 20;
  const int32_t num_tokens = static_cast<int32_t>(bytes / layout.bytes_per_token());
  const std::string lease = fixture.source.AddLease(num_tokens);
  GrpcKvTransport transport({.max_chunk_bytes = state.range(1) << 10});
  const KvHandle handle{.lease_id = lease, .source = fixture.server->address(),
                        .num_tokens = num_tokens, .layout = layout};
  RecordingKvSink sink(layout, num_tokens);

  std::string tcp_src(bytes, '\0');
  std::mt19937_64 rng(7);
  for (int64_t i = 0; i + 8 <= bytes; i += 8) {
    const uint64_t word = rng();
    std::memcpy(&tcp_src[i], &word, 8);
  }
  std::string tcp_dst(bytes, '\0');

  // Warm-up: connect the channel and touch every page of the sink and the TCP buffers.
  if (!transport.Pull(handle, sink, absl::InfiniteFuture()).ok()) std::abort();
  fixture.tcp.Copy(tcp_src.data(), tcp_dst.data(), bytes);

  double grpc_seconds = 0;
  double tcp_seconds = 0;
  int64_t iteration = 0;
  for (auto _ : state) {
    auto pull = [&] {
      const absl::Time start = absl::Now();
      auto stats = transport.Pull(handle, sink, absl::Now() + absl::Seconds(60));
      if (!stats.ok()) {
        state.SkipWithError(std::string(stats.status().message()).c_str());
        return 0.0;
      }
      return absl::ToDoubleSeconds(absl::Now() - start);
    };
    auto copy = [&] {
      const absl::Time start = absl::Now();
      fixture.tcp.Copy(tcp_src.data(), tcp_dst.data(), bytes);
      return absl::ToDoubleSeconds(absl::Now() - start);
    };
    double grpc_s, tcp_s;
    if (iteration++ % 2 == 0) {  // alternate the order so neither always runs on a warm cache
      grpc_s = pull();
      tcp_s = copy();
    } else {
      tcp_s = copy();
      grpc_s = pull();
    }
    grpc_seconds += grpc_s;
    tcp_seconds += tcp_s;
    state.SetIterationTime(grpc_s);
  }
  if (!CheckSameKv(fixture.source, lease, sink).ok() || tcp_src != tcp_dst) {
    state.SkipWithError("bytes differ after the transfer");
  }
  fixture.source.RemoveLease(lease);

  const double total = static_cast<double>(bytes) * iteration;
  state.SetBytesProcessed(static_cast<int64_t>(total));
  state.counters["GBps"] = total / grpc_seconds / 1e9;
  state.counters["tcp_GBps"] = total / tcp_seconds / 1e9;
  state.counters["ratio_vs_tcp"] = tcp_seconds / grpc_seconds;
}

// {MiB of K+V, max chunk KiB}: every size at the default 1 MiB chunk, and at 4 MiB.
BENCHMARK(BM_KvTransfer)
    ->ArgNames({"MiB", "chunk_KiB"})
    ->ArgsProduct({{1, 4, 16, 64, 256}, {1024, 4096}})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->MinTime(0.5);

}  // namespace
}  // namespace tandem

BENCHMARK_MAIN();
