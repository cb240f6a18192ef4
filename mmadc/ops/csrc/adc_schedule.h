// Copyright (c) mmadc contributors. All rights reserved.
//
// The GEMM scheduling of the native ADC CPU kernel (adc_cpu.cpp, which
// includes this header after adc_sampling.h into its one translation
// unit): the float32 GEMM library, a call's geometry from its tensors, the
// blocks of output rows whose columns are built and multiplied in cache,
// the phase planes of strided inputs, and the two schedules of the forward
// (row blocks; the whole call at once for small ones) and of the backward
// (row blocks; channel chunks for late stages).
#pragma once

#include <torch/extension.h>

#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <algorithm>
#include <vector>

#include "adc_sampling.h"

namespace {

// a @ b^T for a (M, K) and b (N, K), each with unit stride along K or
// along the other dimension. float32 goes to oneDNN's matmul (through
// the mkldnn::_linear_pointwise operator PyTorch registers for its CPU
// inductor backend) where the CPU has AVX-512 but MKL does not use it,
// that is on CPUs other than Intel's: MKL runs its AVX2 code on AMD's
// AVX-512 CPUs, where oneDNN is faster. Elsewhere it goes to at::mm (MKL),
// the faster one both on AVX2-only CPUs and on Intel's AVX-512 CPUs, where
// MKL runs AVX-512 code (README, "Tests and benchmarks", has the
// measurements). Other dtypes, or a PyTorch without that operator, use
// at::mm.
const c10::OperatorHandle* onednn_linear() {
  static const c10::OperatorHandle* handle = []() {
    auto found = c10::Dispatcher::singleton().findSchema(
        {"mkldnn::_linear_pointwise", ""});
    return found.has_value() ? new c10::OperatorHandle(*found) : nullptr;
  }();
  return handle;
}

bool onednn_by_default() {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  // called from a static initialiser, which may run before libgcc's own
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && !__builtin_cpu_is("intel");
#else
  return false;
#endif
}

// switched by set_onednn (tests cover both paths)
bool use_onednn = onednn_by_default();

bool uses_onednn() { return use_onednn && onednn_linear() != nullptr; }

at::Tensor gemm_nt(const at::Tensor& a, const at::Tensor& b) {
  const c10::OperatorHandle* op = onednn_linear();
  if (uses_onednn() && a.scalar_type() == at::kFloat) {
    torch::jit::Stack stack{a,
                            b,
                            c10::IValue(),
                            std::string("none"),
                            c10::List<c10::optional<at::Scalar>>(),
                            c10::IValue()};
    op->callBoxed(&stack);
    return stack.back().toTensor();
  }
  return at::mm(a, b.t());
}

Geometry make_geometry(const at::Tensor& input, const at::Tensor& weight,
                       const at::Tensor& rates, at::IntArrayRef stride,
                       at::IntArrayRef padding, at::IntArrayRef dilation) {
  TORCH_CHECK(input.dim() == 4 && weight.dim() == 4 && rates.dim() == 2,
              "adc_cpu: expected 4-D input and weight and 2-D rates");
  TORCH_CHECK(
      stride.size() == 2 && padding.size() == 2 && dilation.size() == 2,
      "adc_cpu: stride, padding and dilation must be pairs");
  Geometry g;
  g.num = input.size(0);
  g.channels = input.size(1);
  g.height = input.size(2);
  g.width = input.size(3);
  g.out_channels = weight.size(0);
  g.kh = weight.size(2);
  g.kw = weight.size(3);
  g.groups = rates.size(1);
  g.sh = stride[0];
  g.sw = stride[1];
  g.ph = padding[0];
  g.pw = padding[1];
  g.dh = dilation[0];
  g.dw = dilation[1];
  g.out_h = (g.height + 2 * g.ph - g.dh * (g.kh - 1) - 1) / g.sh + 1;
  g.out_w = (g.width + 2 * g.pw - g.dw * (g.kw - 1) - 1) / g.sw + 1;
  TORCH_CHECK(weight.size(1) == g.channels && g.kh % 2 == 1 && g.kw % 2 == 1 &&
                  rates.size(0) == g.num && g.groups > 0 &&
                  g.channels % g.groups == 0 && g.out_h > 0 && g.out_w > 0,
              "adc_cpu: inconsistent shapes");
  return g;
}

// Schedule: each thread builds the columns of a run of output rows in its
// cache and multiplies them at once with its own single-threaded GEMM.
// (Measured against one multi-threaded GEMM per chunk of samples, which
// reads the weight fewer times: slower at every ResNet-50 shape here.)
// Row blocks are runs of "flat rows" q = n * H_out + y (the output rows of
// all samples in order), so thin late stages still give the GEMMs enough
// pixels. Rows per block: the block's columns take about block_bytes, but
// at least min_pixels pixels when that fits in 4 * block_bytes.
int64_t rows_per_block(const Geometry& g, int64_t elem, int64_t block_bytes) {
  constexpr int64_t min_pixels = 128;
  const int64_t row_bytes = std::max<int64_t>(1, g.cols() * g.out_w * elem);
  int64_t rows = block_bytes / row_bytes;
  const int64_t wanted = (min_pixels + g.out_w - 1) / g.out_w;
  if (rows < wanted) rows = std::min(wanted, 4 * block_bytes / row_bytes);
  return std::clamp<int64_t>(rows, 1, std::max<int64_t>(1, g.num * g.out_h));
}

// Calls fn(span, offset) for each sample's part of flat rows [q0, q1);
// offset is the part's first pixel within the block.
template <typename Fn>
void for_each_segment(const Geometry& g, int64_t q0, int64_t q1, Fn&& fn) {
  for (int64_t n = q0 / g.out_h; n * g.out_h < q1; ++n) {
    const int64_t y0 = std::max<int64_t>(q0 - n * g.out_h, 0);
    const int64_t y1 = std::min<int64_t>(q1 - n * g.out_h, g.out_h);
    fn(Span{n, y0, y1, 0, g.channels}, (n * g.out_h + y0 - q0) * g.out_w);
  }
}

// The calling thread's scratch slot among `slots`. Inside an enclosing
// OpenMP region at::parallel_for runs inline on a thread whose number may
// exceed the slots made for this call; only that one thread works then.
int64_t thread_slot(int64_t slots) {
  return std::min<int64_t>(at::get_thread_num(), slots - 1);
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Copies between an image (N, C, H, W) and its phase planes (see Planes),
// plane by plane in parallel: to_planes, image -> planes (the elements
// beyond the image set to zero); else planes -> image.
template <typename T>
void copy_phases(const Geometry& g, T* image, T* planes, bool to_planes) {
  const int64_t hq = ceil_div(g.height, g.sh), wq = ceil_div(g.width, g.sw);
  const int64_t image_size = g.height * g.width;
  const int64_t grain = std::max<int64_t>(1, 32768 / image_size);
  at::parallel_for(0, g.num * g.channels, grain, [&](int64_t b, int64_t e) {
    for (int64_t nc = b; nc < e; ++nc) {
      T* img = image + nc * image_size;
      for (int64_t p = 0; p < g.sh; ++p)
        for (int64_t q = 0; q < g.sw; ++q) {
          T* plane = planes + ((nc * g.sh + p) * g.sw + q) * hq * wq;
          // rows and columns of this phase inside the image
          const int64_t rows = ceil_div(g.height - p, g.sh);
          const int64_t cols = ceil_div(g.width - q, g.sw);
          for (int64_t u = 0; u < hq; ++u) {
            T* prow = plane + u * wq;
            if (u >= rows) {
              if (to_planes) std::fill(prow, prow + wq, T(0));
              continue;
            }
            T* irow = img + (u * g.sh + p) * g.width + q;
            if (to_planes) {
              for (int64_t v = 0; v < cols; ++v) prow[v] = irow[v * g.sw];
              std::fill(prow + cols, prow + wq, T(0));
            } else {
              for (int64_t v = 0; v < cols; ++v) irow[v * g.sw] = prow[v];
            }
          }
        }
    }
  });
}

// The input as phase planes (see Planes): itself with stride 1, else a
// deinterleaved copy, one pass over the input.
at::Tensor to_phase_planes(const at::Tensor& input, const Geometry& g) {
  if (g.sh == 1 && g.sw == 1) return input;
  at::Tensor planes =
      at::empty({g.num, g.channels, g.sh, g.sw, ceil_div(g.height, g.sh),
                 ceil_div(g.width, g.sw)},
                input.options());
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "adc_to_phases", [&] {
    copy_phases<scalar_t>(g, input.data_ptr<scalar_t>(),
                          planes.data_ptr<scalar_t>(), true);
  });
  return planes;
}

// The inverse of to_phase_planes (for the input gradient).
at::Tensor from_phase_planes(const at::Tensor& planes, const Geometry& g) {
  if (g.sh == 1 && g.sw == 1)
    return planes.view({g.num, g.channels, g.height, g.width});
  at::Tensor image =
      at::empty({g.num, g.channels, g.height, g.width}, planes.options());
  AT_DISPATCH_FLOATING_TYPES(planes.scalar_type(), "adc_from_phases", [&] {
    copy_phases<scalar_t>(g, image.data_ptr<scalar_t>(),
                          planes.data_ptr<scalar_t>(), false);
  });
  return image;
}

template <typename P>
Planes<P> planes_of(P data, const Geometry& g) {
  return {data,
          g.channels,
          g.sh,
          g.sw,
          ceil_div(g.height, g.sh),
          ceil_div(g.width, g.sw)};
}

// What one call works on; the tensors are detached and contiguous.
template <typename T>
struct Problem {
  Geometry g;
  PlaneRates pr;
  at::Tensor planes;  // the input as phase planes
  Planes<const T*> image;
  at::Tensor wmat;   // (C_out, C_in * kh * kw)
  int64_t block_bytes;
};

// input: detached and contiguous.
template <typename T>
Problem<T> make_problem(const Geometry& g, const at::Tensor& input,
                        const at::Tensor& weight, const at::Tensor& rates,
                        int64_t block_bytes) {
  at::Tensor planes = to_phase_planes(input, g);
  const auto image = planes_of<const T*>(planes.data_ptr<T>(), g);
  return {g,
          plane_rates(rates, g),
          planes,
          image,
          weight.detach().contiguous().view({g.out_channels, g.cols()}),
          block_bytes};
}

template <typename T>
void forward_row_blocks(const Problem<T>& pb, at::Tensor& out2,
                        const c10::optional<at::Tensor>& bias) {
  const Geometry& g = pb.g;
  const int64_t flat_rows = g.num * g.out_h;
  int64_t rows = rows_per_block(g, sizeof(T), pb.block_bytes);
  // Few blocks (late stages): make their number a multiple of the thread
  // count, or one thread gets a whole extra block (3 blocks on 2 threads
  // take as long as 4).
  const int64_t threads = at::get_num_threads();
  int64_t blocks = (flat_rows + rows - 1) / rows;
  if (blocks < 4 * threads && blocks % threads != 0) {
    blocks = std::min(flat_rows, (blocks / threads + 1) * threads);
    rows = (flat_rows + blocks - 1) / blocks;
    blocks = (flat_rows + rows - 1) / rows;
  }
  at::Tensor col_buf =
      at::empty({threads, g.cols() * rows * g.out_w}, out2.options());
  // Worker threads start with default thread-local state; give them the
  // caller's (inference mode, grad mode) for the tensor ops they run.
  const at::ThreadLocalState state;
  at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
    at::ThreadLocalStateGuard guard(state);
    at::Tensor col_t = col_buf[thread_slot(threads)];
    T* col = col_t.data_ptr<T>();
    for (int64_t block = begin; block < end; ++block) {
      const int64_t q0 = block * rows;
      const int64_t q1 = std::min(q0 + rows, flat_rows);
      const int64_t len = (q1 - q0) * g.out_w;
      for_each_segment(g, q0, q1, [&](const Span& s, int64_t offset) {
        build_columns<T>(g, pb.pr, pb.image, s, col + offset, len);
      });
      const at::Tensor res = gemm_nt(
          pb.wmat,
          col_t.narrow(0, 0, g.cols() * len).view({g.cols(), len}).t());
      for_each_segment(g, q0, q1, [&](const Span& s, int64_t offset) {
        const int64_t part = (s.y1 - s.y0) * g.out_w;
        at::Tensor dst = out2[s.n].narrow(1, s.y0 * g.out_w, part);
        const at::Tensor src = res.narrow(1, offset, part);
        if (bias.has_value())
          at::add_out(dst, src, *bias);
        else
          dst.copy_(src);
      });
    }
  });
}

// Whether the forward runs forward_whole: the threads build the columns of
// the whole call, split by channels, and one GEMM, which the GEMM library
// spreads over the threads, reads the weight once. That is where row blocks
// would give each thread a GEMM over a few pixels that reads the whole
// weight (late stages at small batches): where the call's columns fit in
// one block, or in one block per thread and the weight is larger than a
// block's columns. (Columns of one block per thread, whatever the weight's
// size, were slower at HRNet-W32's first branch at batch 1: 3.5 MB of
// columns, a 37 KB weight.)
bool forward_whole_call(const Geometry& g, int64_t elem, int64_t block_bytes) {
  const int64_t columns = g.cols() * g.num * g.pixels() * elem;
  if (columns <= block_bytes) return true;
  const int64_t weight = g.out_channels * g.cols() * elem;
  const int64_t block =
      rows_per_block(g, elem, block_bytes) * g.cols() * g.out_w * elem;
  return columns <= at::get_num_threads() * block_bytes && weight > block;
}

// The forward of a whole call at once (see forward_whole_call).
template <typename T>
void forward_whole(const Problem<T>& pb, at::Tensor& out2,
                   const c10::optional<at::Tensor>& bias) {
  const Geometry& g = pb.g;
  const int64_t pixels = g.pixels(), len = g.num * pixels;
  const int64_t taps = g.kh * g.kw;
  at::Tensor col_t = at::empty({g.cols(), len}, out2.options());
  T* col = col_t.data_ptr<T>();
  at::parallel_for(0, g.num * g.channels, 1, [&](int64_t b, int64_t e) {
    for (int64_t nc = b; nc < e;) {
      const int64_t n = nc / g.channels, c0 = nc % g.channels;
      const int64_t c1 = std::min(g.channels, c0 + (e - nc));
      build_columns<T>(g, pb.pr, pb.image, Span{n, 0, g.out_h, c0, c1},
                       col + c0 * taps * len + n * pixels, len);
      nc += c1 - c0;
    }
  });
  const at::Tensor res = gemm_nt(pb.wmat, col_t.t());
  const at::Tensor src =
      res.view({g.out_channels, g.num, pixels}).permute({1, 0, 2});
  if (bias.has_value())
    at::add_out(out2, src, *bias);
  else
    out2.copy_(src);
}

// Gradient outputs of the backward; null pointers/undefined when not
// needed.
template <typename T>
struct Gradients {
  T* input;  // input gradient as phase planes, zero-initialised, scattered
  double* rho;    // (N, C_in) rate gradient of each plane
  bool weight;    // whether to compute the weight gradient
  at::Tensor weight_grad;  // (C_out, C_in * kh * kw), set by the backward
};

template <typename T>
void backward_row_blocks(const Problem<T>& pb, const at::Tensor& grad_out,
                         Gradients<T>& grads) {
  const Geometry& g = pb.g;
  const int64_t taps = g.kh * g.kw;
  const at::Tensor wmat_t = pb.wmat.t();
  // Each block's weight gradient is a weight-sized GEMM result added to the
  // thread's accumulator. Where that is much larger than the block's
  // columns (late stages), blocks grow to C_out pixels (there: one block
  // per thread), so fewer such temporaries are made.
  int64_t rows = rows_per_block(g, sizeof(T), pb.block_bytes);
  if (g.out_channels > 2 * rows * g.out_w)
    rows = std::min((g.out_channels + g.out_w - 1) / g.out_w,
                    std::max<int64_t>(1, g.num * g.out_h));
  // A sample's input gradient is written by one thread only (its blocks
  // scatter into overlapping rows), so threads split the samples; with fewer
  // samples than threads, one block at a time, with the GEMMs and the
  // sampling (split by channels, whose planes are disjoint) threaded.
  const int64_t threads = at::get_num_threads();
  const int64_t slots = g.num >= threads ? threads : 1;
  // fn(c0, c1) over all channels: in this thread, or split over the threads
  // when the blocks are not
  auto channels = [&](auto&& fn) {
    if (slots > 1) return fn(int64_t{0}, g.channels);
    at::parallel_for(0, g.channels, 1, fn);
  };
  // a block never spans more than one thread's samples
  rows = std::clamp<int64_t>((g.num + slots - 1) / slots * g.out_h, 1, rows);
  const auto opts = grad_out.options();
  at::Tensor col_buf = at::empty({slots, g.cols() * rows * g.out_w}, opts);
  std::vector<at::Tensor> weight_acc(slots);
  // Samples [n0, n1), block by block, with the slot's scratch buffers.
  auto samples = [&](int64_t n0, int64_t n1, int64_t slot) {
    at::Tensor col_t = col_buf[slot];
    T* col = col_t.data_ptr<T>();
    for (int64_t q0 = n0 * g.out_h; q0 < n1 * g.out_h; q0 += rows) {
      const int64_t q1 = std::min(q0 + rows, n1 * g.out_h);
      const int64_t len = (q1 - q0) * g.out_w;
      std::vector<at::Tensor> parts;
      for_each_segment(g, q0, q1, [&](const Span& s, int64_t) {
        parts.push_back(
            grad_out[s.n].narrow(1, s.y0 * g.out_w, (s.y1 - s.y0) * g.out_w));
      });
      const at::Tensor go = at::cat(parts, 1);  // (C_out, len)
      // the columns, for the weight gradient: built in the walk of the
      // input and rate gradients where there is one
      T* block_col = grads.weight ? col : nullptr;
      if (grads.input != nullptr || grads.rho != nullptr) {
        const at::Tensor gcols = gemm_nt(wmat_t, go.t()).contiguous();
        T* gc = gcols.data_ptr<T>();
        const auto grad_image = planes_of<T*>(grads.input, g);
        channels([&](int64_t c0, int64_t c1) {
          for_each_segment(g, q0, q1, [&](Span s, int64_t offset) {
            s.c0 = c0;
            s.c1 = c1;
            const int64_t at = c0 * taps * len + offset;
            pull_back_columns<T>(
                g, pb.pr, pb.image, gc + at, len, s,
                grads.input == nullptr ? nullptr : &grad_image, grads.rho,
                block_col == nullptr ? nullptr : block_col + at);
          });
        });
      } else if (grads.weight) {
        channels([&](int64_t c0, int64_t c1) {
          for_each_segment(g, q0, q1, [&](Span s, int64_t offset) {
            s.c0 = c0;
            s.c1 = c1;
            build_columns<T>(g, pb.pr, pb.image, s,
                             col + c0 * taps * len + offset, len);
          });
        });
      }
      if (grads.weight) {
        at::Tensor gw = gemm_nt(
            go, col_t.narrow(0, 0, g.cols() * len).view({g.cols(), len}));
        if (weight_acc[slot].defined())
          weight_acc[slot].add_(gw);
        else
          weight_acc[slot] = gw;
      }
    }
  };
  if (slots > 1) {
    const at::ThreadLocalState state;  // see forward_row_blocks
    at::parallel_for(0, g.num, 1, [&](int64_t begin, int64_t end) {
      at::ThreadLocalStateGuard guard(state);
      samples(begin, end, thread_slot(slots));
    });
  } else {
    samples(0, g.num, 0);
  }
  for (auto& acc : weight_acc) {
    if (!acc.defined()) continue;
    if (grads.weight_grad.defined())
      grads.weight_grad.add_(acc);
    else
      grads.weight_grad = acc;
  }
}

// Channels per chunk of the channel schedule: its columns over all pixels
// take about half of block_bytes (as fast as the whole, with less memory).
// Zero where that is fewer than min_channels (the GEMMs would be
// too thin): there the row-block schedule is used.
int64_t channels_per_chunk(const Geometry& g, int64_t elem,
                           int64_t block_bytes) {
  constexpr int64_t min_channels = 16;
  const int64_t bytes = g.kh * g.kw * g.num * g.pixels() * elem;
  if (bytes == 0) return 0;  // an empty batch: nothing to do
  const int64_t chunk = block_bytes / 2 / bytes;
  if (chunk < std::min(min_channels, g.channels)) return 0;
  // as many chunks as a multiple of the thread count, for balance
  const int64_t threads = at::get_num_threads();
  int64_t chunks = ceil_div(g.channels, std::min(chunk, g.channels));
  chunks = std::min(g.channels, ceil_div(chunks, threads) * threads);
  return ceil_div(g.channels, chunks);
}

// The backward of late stages (few pixels, many channels): each thread
// takes chunks of input channels over all samples. A chunk's weight
// gradient is its own slice of the weight gradient, one GEMM over all
// pixels (no per-block weight-sized temporaries), and the chunk's columns
// and column gradients stay in the cache.
template <typename T>
void backward_channel_chunks(const Problem<T>& pb, const at::Tensor& grad_out,
                             int64_t chunk, Gradients<T>& grads) {
  const Geometry& g = pb.g;
  const int64_t taps = g.kh * g.kw, pixels = g.num * g.pixels();
  // (C_out, N * H_out * W_out)
  const at::Tensor go =
      grad_out.permute({1, 0, 2}).reshape({g.out_channels, pixels});
  const at::Tensor wmat_t = pb.wmat.t();
  if (grads.weight)
    grads.weight_grad = at::empty({g.out_channels, g.cols()}, go.options());
  const int64_t threads = at::get_num_threads();
  at::Tensor col_buf =
      at::empty({threads, chunk * taps * pixels}, go.options());
  const auto grad_image = planes_of<T*>(grads.input, g);
  const at::ThreadLocalState state;  // see forward_row_blocks
  at::parallel_for(
      0, ceil_div(g.channels, chunk), 1, [&](int64_t begin, int64_t end) {
        at::ThreadLocalStateGuard guard(state);
        const int64_t slot = thread_slot(threads);
        T* col = col_buf[slot].data_ptr<T>();
        for (int64_t k = begin; k < end; ++k) {
          const int64_t c0 = k * chunk;
          const int64_t c1 = std::min(c0 + chunk, g.channels);
          const int64_t rows = (c1 - c0) * taps;
          auto span = [&](int64_t n) {
            return Span{n, 0, g.out_h, c0, c1};
          };
          T* chunk_col = grads.weight ? col : nullptr;
          if (grads.input != nullptr || grads.rho != nullptr) {
            const at::Tensor gcols =
                gemm_nt(wmat_t.narrow(0, c0 * taps, rows), go.t())
                    .contiguous();
            for (int64_t n = 0; n < g.num; ++n)
              pull_back_columns<T>(
                  g, pb.pr, pb.image, gcols.data_ptr<T>() + n * g.pixels(),
                  pixels, span(n),
                  grads.input == nullptr ? nullptr : &grad_image, grads.rho,
                  chunk_col == nullptr ? nullptr : chunk_col + n * g.pixels());
          } else if (grads.weight) {
            for (int64_t n = 0; n < g.num; ++n)
              build_columns<T>(g, pb.pr, pb.image, span(n),
                               col + n * g.pixels(), pixels);
          }
          if (grads.weight) {
            grads.weight_grad.narrow(1, c0 * taps, rows)
                .copy_(gemm_nt(go, col_buf[slot]
                                       .narrow(0, 0, rows * pixels)
                                       .view({rows, pixels})));
          }
        }
      });
}

}  // namespace
