// Tensor: a non-owning, row-major, contiguous view of device (or host) memory with a dtype and a shape
// of at most four dimensions. Part of the bottom layer: no abseil, includable from .cu files. A Tensor
// is a value (copying it copies the view, never the data) and creating one never allocates.
#ifndef TANDEM_TYPES_TENSOR_H_
#define TANDEM_TYPES_TENSOR_H_

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "types/dtype.h"

namespace tandem {

class Shape {
 public:
  static constexpr int kMaxRank = 4;

  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) { Assign(dims.begin(), dims.end()); }
  Shape(const std::vector<int64_t>& dims) { Assign(dims.begin(), dims.end()); }  // NOLINT: implicit

  int rank() const { return rank_; }
  int64_t operator[](int i) const { return dims_[i]; }
  int64_t num_elements() const {
    int64_t n = 1;
    for (int i = 0; i < rank_; ++i) n *= dims_[i];
    return n;
  }
  std::vector<int64_t> ToVector() const { return std::vector<int64_t>(dims_, dims_ + rank_); }

  friend bool operator==(const Shape& a, const Shape& b) {
    if (a.rank_ != b.rank_) return false;
    for (int i = 0; i < a.rank_; ++i) {
      if (a.dims_[i] != b.dims_[i]) return false;
    }
    return true;
  }

 private:
  template <typename It>
  void Assign(It begin, It end) {
    rank_ = 0;
    // A rank above kMaxRank is a programming error; the extra dimensions fold into the last one so
    // that num_elements() stays right.
    for (It it = begin; it != end; ++it) {
      if (rank_ < kMaxRank) {
        dims_[rank_++] = *it;
      } else {
        dims_[kMaxRank - 1] *= *it;
      }
    }
  }

  int rank_ = 0;
  int64_t dims_[kMaxRank] = {0, 0, 0, 0};
};

struct Tensor {
  void* data = nullptr;
  DType dtype = DType::kF32;
  Shape shape;

  int64_t num_elements() const { return shape.num_elements(); }
  int64_t num_bytes() const { return num_elements() * DTypeSize(dtype); }
  int64_t dim(int i) const { return shape[i]; }
  template <typename T>
  T* as() const { return static_cast<T*>(data); }
};

}  // namespace tandem

#endif  // TANDEM_TYPES_TENSOR_H_
