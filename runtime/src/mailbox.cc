// Triple-buffer links: in-process and over /dev/shm, with futex wake-ups.
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "edgefd/runtime/transport.h"

namespace edgefd::runtime {

Status FrameWriter::PublishFrom(const FrameMeta& meta, const float* data) {
  std::memcpy(Buffer(), data, meta.shape.Bytes());
  return Publish(meta);
}

namespace {

constexpr uint32_t kMagic = 0xEDFD0001;
constexpr uint32_t kFresh = 4;  // flag on `middle`: the slot holds an unread frame
constexpr size_t kPage = 4096;

size_t RoundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

/// Lives at the start of the shared region. Only atomics and plain data: both processes map
/// it. `back` is written by the producer only, `front` by the consumer only, so an end that
/// re-attaches carries on from the slot it owned.
struct Header {
  uint32_t magic;
  uint32_t header_bytes;
  uint64_t slot_bytes;
  std::atomic<uint32_t> middle;
  std::atomic<uint32_t> published;  // futex word, bumped on publish and close
  std::atomic<uint32_t> taken;      // futex word, bumped when the consumer takes a frame
  std::atomic<uint32_t> closed;
  std::atomic<uint32_t> back;
  std::atomic<uint32_t> front;
  std::atomic<uint64_t> drops;
  FrameMeta meta[3];
  const float* external[3];  // in-process zero-copy frames
};

void FutexWait(std::atomic<uint32_t>* word, uint32_t expected, std::chrono::nanoseconds timeout) {
  if (timeout.count() <= 0) return;
  timespec ts{time_t(timeout.count() / 1000000000), long(timeout.count() % 1000000000)};
  // Not FUTEX_PRIVATE: the word may be shared between processes.
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected, &ts, nullptr, 0);
}

void FutexWakeAll(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
}

/// A mapped region holding a Header and three slots; owns the mapping.
class Region {
 public:
  virtual ~Region() = default;
  Header* header() { return static_cast<Header*>(base_); }
  float* Slot(uint32_t i) {
    return reinterpret_cast<float*>(static_cast<char*>(base_) + header()->header_bytes +
                                    size_t(i) * header()->slot_bytes);
  }

 protected:
  void* base_ = nullptr;
};

size_t RegionBytes(size_t frame_bytes) {
  return RoundUp(sizeof(Header), kPage) + 3 * RoundUp(std::max<size_t>(frame_bytes, 1), kPage);
}

void InitHeader(Header* h, size_t frame_bytes) {
  h->header_bytes = uint32_t(RoundUp(sizeof(Header), kPage));
  h->slot_bytes = RoundUp(std::max<size_t>(frame_bytes, 1), kPage);
  h->middle.store(1);
  h->published.store(0);
  h->taken.store(0);
  h->closed.store(0);
  h->back.store(0);
  h->front.store(2);
  h->drops.store(0);
  for (auto& e : h->external) e = nullptr;
  std::atomic_thread_fence(std::memory_order_release);
  reinterpret_cast<std::atomic<uint32_t>*>(&h->magic)->store(kMagic, std::memory_order_release);
}

class HeapRegion final : public Region {
 public:
  explicit HeapRegion(size_t frame_bytes) {
    size_t bytes = RegionBytes(frame_bytes);
    base_ = std::aligned_alloc(kPage, bytes);
    std::memset(base_, 0, bytes);  // pre-fault every slot page
    InitHeader(header(), frame_bytes);
  }
  ~HeapRegion() override { std::free(base_); }
};

class ShmRegion final : public Region {
 public:
  static Result<std::shared_ptr<ShmRegion>> Open(const std::string& name, size_t frame_bytes) {
    if (name.empty() || name.find('/') != std::string::npos || name.size() > 200) {
      return Error{"shm:" + name + ": ring name must be a plain file name under /dev/shm"};
    }
    auto r = std::shared_ptr<ShmRegion>(new ShmRegion());
    r->bytes_ = RegionBytes(frame_bytes);
    std::string path = "/" + name;
    bool created = true;
    int fd = shm_open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) {
      created = false;
      fd = shm_open(path.c_str(), O_RDWR | O_CLOEXEC, 0600);
    }
    if (fd < 0) return Error{"shm:" + name + ": " + std::strerror(errno)};
    if (created && ftruncate(fd, off_t(r->bytes_)) != 0) {
      int e = errno;
      close(fd);
      return Error{"shm:" + name + ": cannot size to " + std::to_string(r->bytes_) +
                   " bytes: " + std::strerror(e)};
    }
    if (!created) {
      // The creator may not have sized it yet; wait briefly for the size to appear.
      struct stat st {};
      for (int i = 0; i < 2000 && fstat(fd, &st) == 0 && size_t(st.st_size) < r->bytes_; ++i) {
        usleep(1000);
      }
      if (size_t(st.st_size) != r->bytes_) {
        close(fd);
        return Error{"shm:" + name + ": ring is " + std::to_string(st.st_size) +
                     " bytes, this stage expects " + std::to_string(r->bytes_) +
                     " (stages disagree about the frame shape?)"};
      }
    }
    r->base_ = mmap(nullptr, r->bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    close(fd);
    if (r->base_ == MAP_FAILED) {
      r->base_ = nullptr;
      return Error{"shm:" + name + ": mmap: " + std::strerror(errno)};
    }
    Header* h = r->header();
    if (created) {
      InitHeader(h, frame_bytes);
    } else {
      auto* magic = reinterpret_cast<std::atomic<uint32_t>*>(&h->magic);
      for (int i = 0; i < 2000 && magic->load(std::memory_order_acquire) != kMagic; ++i) {
        usleep(1000);
      }
      if (magic->load(std::memory_order_acquire) != kMagic) {
        return Error{"shm:" + name + ": not an edgefd frame ring (bad magic)"};
      }
    }
    return r;
  }
  ~ShmRegion() override {
    if (base_ != nullptr) munmap(base_, bytes_);
  }

 private:
  ShmRegion() = default;
  size_t bytes_ = 0;
};

class MailboxWriter final : public FrameWriter {
 public:
  MailboxWriter(std::shared_ptr<Region> region, Policy policy, bool zero_copy)
      : region_(std::move(region)), policy_(policy), zero_copy_(zero_copy) {}

  float* Buffer() override { return region_->Slot(h()->back.load()); }

  Status Publish(const FrameMeta& meta) override { return Put(meta, nullptr); }

  Status PublishFrom(const FrameMeta& meta, const float* data) override {
    if (!zero_copy_) return FrameWriter::PublishFrom(meta, data);
    return Put(meta, data);
  }

  Status Close() override {
    h()->closed.store(1);
    h()->published.fetch_add(1);
    FutexWakeAll(&h()->published);
    return Ok{};
  }

  uint64_t Drops() const override { return region_->header()->drops.load(); }

 private:
  Header* h() { return region_->header(); }

  Status Put(const FrameMeta& meta, const float* external) {
    if (meta.shape.Bytes() > h()->slot_bytes) {
      return Error{"frame " + meta.shape.ToString() + " does not fit the link's slots"};
    }
    if (policy_ == Policy::kBlock) {
      // Wait until the consumer took the previous frame (it may still be reading it: that
      // one is its front slot, not ours).
      while (h()->middle.load() & kFresh) {
        if (aborted_.load()) return Error{"link aborted while waiting for the consumer"};
        uint32_t t = h()->taken.load();
        if (!(h()->middle.load() & kFresh)) break;
        FutexWait(&h()->taken, t, std::chrono::milliseconds(50));
      }
    }
    uint32_t back = h()->back.load();
    h()->meta[back] = meta;
    h()->external[back] = external;
    uint32_t prev = h()->middle.exchange(back | kFresh, std::memory_order_acq_rel);
    if (prev & kFresh) h()->drops.fetch_add(1);
    h()->back.store(prev & 3);
    h()->published.fetch_add(1, std::memory_order_release);
    FutexWakeAll(&h()->published);
    return Ok{};
  }

  std::shared_ptr<Region> region_;
  Policy policy_;
  bool zero_copy_;
};

class MailboxReader final : public FrameReader {
 public:
  MailboxReader(std::shared_ptr<Region> region, std::string address)
      : region_(std::move(region)), address_(std::move(address)) {}

  ReadResult Next(FrameMeta* meta, const float** data, std::chrono::milliseconds timeout) override {
    Header* h = region_->header();
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (h->middle.load(std::memory_order_acquire) & kFresh) {
        uint32_t prev = h->middle.exchange(h->front.load(), std::memory_order_acq_rel);
        uint32_t front = prev & 3;
        h->front.store(front);
        h->taken.fetch_add(1);
        FutexWakeAll(&h->taken);
        *meta = h->meta[front];
        *data = h->external[front] != nullptr ? h->external[front] : region_->Slot(front);
        return ReadResult::kFrame;
      }
      uint32_t p = h->published.load(std::memory_order_acquire);
      if (h->middle.load(std::memory_order_acquire) & kFresh) continue;
      if (h->closed.load()) return ReadResult::kClosed;
      auto left = deadline - std::chrono::steady_clock::now();
      if (left <= std::chrono::nanoseconds(0)) return ReadResult::kTimeout;
      FutexWait(&h->published, p, left);
    }
  }

  uint64_t Drops() const override { return region_->header()->drops.load(); }
  std::string Address() const override { return address_; }

 private:
  std::shared_ptr<Region> region_;
  std::string address_;
};

}  // namespace

MailboxPair MakeInprocLink(size_t frame_bytes, Policy policy) {
  auto region = std::make_shared<HeapRegion>(frame_bytes);
  return {std::make_unique<MailboxWriter>(region, policy, true),
          std::make_unique<MailboxReader>(region, "inproc")};
}

Result<std::unique_ptr<FrameWriter>> OpenShmWriter(const std::string& name, size_t frame_bytes,
                                                   Policy policy) {
  auto r = ShmRegion::Open(name, frame_bytes);
  if (!r) return r.error();
  return std::unique_ptr<FrameWriter>(std::make_unique<MailboxWriter>(*r, policy, false));
}

Result<std::unique_ptr<FrameReader>> OpenShmReader(const std::string& name, size_t frame_bytes,
                                                   Policy) {
  auto r = ShmRegion::Open(name, frame_bytes);
  if (!r) return r.error();
  return std::unique_ptr<FrameReader>(std::make_unique<MailboxReader>(*r, "shm:" + name));
}

void UnlinkShm(const std::string& name) { shm_unlink(("/" + name).c_str()); }

Result<std::unique_ptr<FrameReader>> OpenReader(const std::string& address, Shape shape,
                                                Policy policy) {
  if (address.rfind("shm:", 0) == 0) return OpenShmReader(address.substr(4), shape.Bytes(), policy);
  return ListenGrpc(address, shape, policy);
}

Result<std::unique_ptr<FrameWriter>> OpenWriter(const std::string& address, Shape shape,
                                                Policy policy,
                                                std::chrono::milliseconds reconnect_timeout) {
  if (address.rfind("shm:", 0) == 0) return OpenShmWriter(address.substr(4), shape.Bytes(), policy);
  return ConnectGrpc(address, shape.Bytes(), reconnect_timeout);
}

}  // namespace edgefd::runtime
