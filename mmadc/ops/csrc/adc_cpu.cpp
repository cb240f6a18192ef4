// Copyright (c) mmadc contributors. All rights reserved.
//
// Native CPU kernels of adaptive dilated convolution (ADC).
//
// Same semantics as the reference in mmadc/ops/adaptive_dilated_conv.py
// (and tested against it): tap (i, j) of output (ho, wo) reads channel c at
//   (ho * sh + cy + ti * dh * r,  wo * sw + cx + tj * dw * r)
// by bilinear interpolation with zero outside the image, where
// ti = i - kh / 2, cy = -ph + dh * (kh / 2) (likewise along W) and r is the
// rate of c's dilation group for that sample. Integer and fractional parts
// use the floor convention of torchvision's deform_conv2d.
//
// Because a tap's shift is the same at every output position, its bilinear
// read is one set of four weights applied to two shifted input rows: the
// sampling loops are contiguous, vectorisable row operations. The tap
// columns are built per block of output rows, sized to stay in the L2 cache,
// and consumed at once by a GEMM (as in an im2col convolution), so the
// 9x-sized tap image never goes through main memory. The backward recomputes
// the columns (nothing but the input, weight and rates is saved) and applies
// the adjoint of the sampling (a scatter into rows the calling thread owns)
// fused with the rate gradient.
#include <torch/extension.h>

#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace {

struct Geometry {
  int64_t num, channels, height, width;
  int64_t out_channels, kh, kw, out_h, out_w;
  int64_t groups;
  int64_t sh, sw, ph, pw, dh, dw;
  int64_t cols() const { return channels * kh * kw; }
  int64_t pixels() const { return out_h * out_w; }
  int64_t base_y() const { return -ph + dh * (kh / 2); }
  int64_t base_x() const { return -pw + dw * (kw / 2); }
};

int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

// One tap along one axis: source index offset and interpolation weight.
template <typename T>
struct AxisTap {
  int64_t offset;  // source index of output 0 (before the stride)
  T frac;          // weight of source index + 1
  T slope;         // d(shift)/d(rate) = dilation * tap
};

template <typename T>
AxisTap<T> axis_tap(double rho, int64_t tap, int64_t base, int64_t dilation) {
  // Shift in float64 whatever T (like the reference): the floor must not
  // flip because of rounding.
  const double shift = rho * static_cast<double>(tap);
  const double fl = std::floor(shift);
  return {base + static_cast<int64_t>(fl), static_cast<T>(shift - fl),
          static_cast<T>(dilation * tap)};
}

// Output columns [lo, hi) whose two source columns x * s + off, + 1 are both
// inside [0, len): there the loops need no bounds checks. Always
// 0 <= lo <= hi <= out_len; [0, lo) and [hi, out_len) take the checked path.
void interior(int64_t off, int64_t stride, int64_t len, int64_t out_len,
              int64_t* lo, int64_t* hi) {
  *lo = std::clamp<int64_t>(-floor_div(off, stride), 0, out_len);
  *hi = std::clamp<int64_t>(floor_div(len - 2 - off, stride) + 1, *lo,
                            out_len);
}

// dst[x] = c00 r0[xs] + c01 r0[xs + 1] + c10 r1[xs] + c11 r1[xs + 1],
// xs = x * s + off (one tap, one output row).
template <typename T>
void sample_row(T* __restrict dst, const T* __restrict r0,
                const T* __restrict r1, T c00, T c01, T c10, T c11,
                int64_t off, int64_t s, int64_t lo, int64_t hi, int64_t out_w,
                int64_t width) {
  auto at = [width](const T* row, int64_t x) {
    return (x >= 0 && x < width) ? row[x] : T(0);
  };
  for (int64_t x = lo == 0 ? hi : 0; x < out_w; x = x + 1 == lo ? hi : x + 1) {
    const int64_t xs = x * s + off;
    dst[x] = c00 * at(r0, xs) + c01 * at(r0, xs + 1) + c10 * at(r1, xs) +
             c11 * at(r1, xs + 1);
  }
  if (s == 1) {
    const T* a = r0 + off;
    const T* b = r1 + off;
#pragma omp simd
    for (int64_t x = lo; x < hi; ++x)
      dst[x] = c00 * a[x] + c01 * a[x + 1] + c10 * b[x] + c11 * b[x + 1];
  } else {
    for (int64_t x = lo; x < hi; ++x) {
      const int64_t xs = x * s + off;
      dst[x] = c00 * r0[xs] + c01 * r0[xs + 1] + c10 * r1[xs] +
               c11 * r1[xs + 1];
    }
  }
}

// Adjoint of one source row's share of sample_row: row[xs] += a v[x],
// row[xs + 1] += b v[x].
template <typename T>
void scatter_row(T* __restrict row, const T* __restrict v, T a, T b,
                 int64_t off, int64_t s, int64_t lo, int64_t hi, int64_t out_w,
                 int64_t width) {
  for (int64_t x = lo == 0 ? hi : 0; x < out_w; x = x + 1 == lo ? hi : x + 1) {
    const int64_t xs = x * s + off;
    if (xs >= 0 && xs < width) row[xs] += a * v[x];
    if (xs + 1 >= 0 && xs + 1 < width) row[xs + 1] += b * v[x];
  }
  if (hi <= lo) return;
  if (s == 1) {
    // Written as a gather over destinations so that it vectorises.
    T* r = row + off;
    r[lo] += a * v[lo];
#pragma omp simd
    for (int64_t x = lo + 1; x < hi; ++x) r[x] += a * v[x] + b * v[x - 1];
    r[hi] += b * v[hi - 1];
  } else {
    for (int64_t x = lo; x < hi; ++x) {
      const int64_t xs = x * s + off;
      row[xs] += a * v[x];
      row[xs + 1] += b * v[x];
    }
  }
}

// sum_x v[x] (e00 r0[xs] + e01 r0[xs + 1] + e10 r1[xs] + e11 r1[xs + 1]).
template <typename T>
double dot_row(const T* __restrict v, const T* __restrict r0,
               const T* __restrict r1, T e00, T e01, T e10, T e11,
               int64_t off, int64_t s, int64_t lo, int64_t hi, int64_t out_w,
               int64_t width) {
  auto at = [width](const T* row, int64_t x) {
    return (x >= 0 && x < width) ? row[x] : T(0);
  };
  double total = 0;
  for (int64_t x = lo == 0 ? hi : 0; x < out_w; x = x + 1 == lo ? hi : x + 1) {
    const int64_t xs = x * s + off;
    total += v[x] * (e00 * at(r0, xs) + e01 * at(r0, xs + 1) +
                     e10 * at(r1, xs) + e11 * at(r1, xs + 1));
  }
  T acc = 0;
  if (s == 1) {
    const T* a = r0 + off;
    const T* b = r1 + off;
#pragma omp simd reduction(+ : acc)
    for (int64_t x = lo; x < hi; ++x)
      acc += v[x] * (e00 * a[x] + e01 * a[x + 1] + e10 * b[x] + e11 * b[x + 1]);
  } else {
    for (int64_t x = lo; x < hi; ++x) {
      const int64_t xs = x * s + off;
      acc += v[x] * (e00 * r0[xs] + e01 * r0[xs + 1] + e10 * r1[xs] +
                     e11 * r1[xs + 1]);
    }
  }
  return total + acc;
}

// Per (sample, channel) plane: d * r along each axis.
struct PlaneRates {
  std::vector<double> h, w;
};

PlaneRates plane_rates(const at::Tensor& rates, const Geometry& g) {
  auto r = rates.detach().to(at::kDouble).contiguous();
  const double* rp = r.data_ptr<double>();
  PlaneRates out{std::vector<double>(g.num * g.channels),
                 std::vector<double>(g.num * g.channels)};
  for (int64_t n = 0; n < g.num; ++n)
    for (int64_t c = 0; c < g.channels; ++c) {
      const double rate = rp[n * g.groups + c * g.groups / g.channels];
      out.h[n * g.channels + c] = rate * static_cast<double>(g.dh);
      out.w[n * g.channels + c] = rate * static_cast<double>(g.dw);
    }
  return out;
}

// The walk over (channel, tap i, tap j, output row) of one block of output
// rows [y0, y1) of sample n, shared by the forward and backward loops:
// fn(c, i, j, y, tap_h, tap_w, r0, r1, valid0, valid1) with r0/r1 the
// source row indices.
template <typename T, typename Fn>
void for_each_tap_row(const Geometry& g, const PlaneRates& pr, int64_t n,
                      int64_t y0, int64_t y1, Fn&& fn) {
  for (int64_t c = 0; c < g.channels; ++c) {
    const int64_t plane = n * g.channels + c;
    for (int64_t i = 0; i < g.kh; ++i) {
      const auto th =
          axis_tap<T>(pr.h[plane], i - g.kh / 2, g.base_y(), g.dh);
      for (int64_t j = 0; j < g.kw; ++j) {
        const auto tw =
            axis_tap<T>(pr.w[plane], j - g.kw / 2, g.base_x(), g.dw);
        int64_t lo, hi;
        interior(tw.offset, g.sw, g.width, g.out_w, &lo, &hi);
        for (int64_t y = y0; y < y1; ++y) {
          const int64_t ys = y * g.sh + th.offset;
          fn(c, i, j, y, th, tw, lo, hi, ys, ys >= 0 && ys < g.height,
             ys + 1 >= 0 && ys + 1 < g.height);
        }
      }
    }
  }
}

// Tap columns of rows [y0, y1) of sample n: column (c, i, j) of output
// (y, x) goes to col[((c * kh + i) * kw + j) * ld + (y - y0) * W_out + x].
template <typename T>
void build_columns(const Geometry& g, const PlaneRates& pr, const T* input,
                   const T* zeros, int64_t n, int64_t y0, int64_t y1, T* col,
                   int64_t ld) {
  const T* image = input + n * g.channels * g.height * g.width;
  for_each_tap_row<T>(
      g, pr, n, y0, y1,
      [&](int64_t c, int64_t i, int64_t j, int64_t y, const AxisTap<T>& th,
          const AxisTap<T>& tw, int64_t lo, int64_t hi, int64_t ys, bool v0,
          bool v1) {
        const T* plane = image + c * g.height * g.width;
        const T* r0 = v0 ? plane + ys * g.width : zeros;
        const T* r1 = v1 ? plane + (ys + 1) * g.width : zeros;
        const T uy = T(1) - th.frac, ux = T(1) - tw.frac;
        T* dst = col + ((c * g.kh + i) * g.kw + j) * ld + (y - y0) * g.out_w;
        sample_row<T>(dst, r0, r1, uy * ux, uy * tw.frac, th.frac * ux,
                      th.frac * tw.frac, tw.offset, g.sw, lo, hi, g.out_w,
                      g.width);
      });
}

// Input and rate gradients from the column gradients of rows [y0, y1) of
// sample n (laid out as in build_columns).
template <typename T>
void pull_back_columns(const Geometry& g, const PlaneRates& pr, const T* input,
                       const T* zeros, T* sink, const T* col_grad, int64_t ld,
                       int64_t n, int64_t y0, int64_t y1, T* grad_input,
                       double* grad_rate) {
  const int64_t plane_size = g.height * g.width;
  const T* image = input + n * g.channels * plane_size;
  for_each_tap_row<T>(
      g, pr, n, y0, y1,
      [&](int64_t c, int64_t i, int64_t j, int64_t y, const AxisTap<T>& th,
          const AxisTap<T>& tw, int64_t lo, int64_t hi, int64_t ys, bool v0,
          bool v1) {
        const T* v = col_grad + ((c * g.kh + i) * g.kw + j) * ld +
                     (y - y0) * g.out_w;
        const T uy = T(1) - th.frac, ux = T(1) - tw.frac;
        if (grad_input != nullptr) {
          T* gplane = grad_input + (n * g.channels + c) * plane_size;
          // rows outside the image receive their share in a scratch row
          scatter_row<T>(v0 ? gplane + ys * g.width : sink, v, uy * ux,
                         uy * tw.frac, tw.offset, g.sw, lo, hi, g.out_w,
                         g.width);
          scatter_row<T>(v1 ? gplane + (ys + 1) * g.width : sink, v,
                         th.frac * ux, th.frac * tw.frac, tw.offset, g.sw, lo,
                         hi, g.out_w, g.width);
        }
        if (grad_rate != nullptr && (th.slope != T(0) || tw.slope != T(0))) {
          // d(sample)/d(rate) = slope_h * dM/dy + slope_w * dM/dx, with the
          // interpolant's derivatives expanded over the four neighbours.
          const T sy = th.slope, sx = tw.slope;
          const T* plane = image + c * plane_size;
          grad_rate[n * g.channels + c] += dot_row<T>(
              v, v0 ? plane + ys * g.width : zeros,
              v1 ? plane + (ys + 1) * g.width : zeros, -sy * ux - sx * uy,
              -sy * tw.frac + sx * uy, sy * ux - sx * th.frac,
              sy * tw.frac + sx * th.frac, tw.offset, g.sw, lo, hi, g.out_w,
              g.width);
        }
      });
}

// a @ b^T for a (M, K) and b (N, K), each with unit stride along K or
// along the other dimension. float32 goes to oneDNN's matmul (through
// the mkldnn::_linear_pointwise operator PyTorch registers for its CPU
// inductor backend): on CPUs where MKL takes a slower code path (e.g. AMD)
// it is about twice as fast as at::mm and matches the convolution ADC is
// compared with. Other dtypes, or a PyTorch without that operator, use
// at::mm.
const c10::OperatorHandle* onednn_linear() {
  static const c10::OperatorHandle* handle = []() {
    auto found = c10::Dispatcher::singleton().findSchema(
        {"mkldnn::_linear_pointwise", ""});
    return found.has_value() ? new c10::OperatorHandle(*found) : nullptr;
  }();
  return handle;
}

bool use_onednn = true;  // switched by set_onednn (tests cover both paths)

at::Tensor gemm_nt(const at::Tensor& a, const at::Tensor& b) {
  const c10::OperatorHandle* op = onednn_linear();
  if (use_onednn && op != nullptr && a.scalar_type() == at::kFloat) {
    torch::jit::Stack stack{a, b, c10::IValue(), std::string("none"),
                            c10::List<std::optional<at::Scalar>>(),
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
  TORCH_CHECK(stride.size() == 2 && padding.size() == 2 &&
                  dilation.size() == 2,
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
  TORCH_CHECK(weight.size(1) == g.channels && g.kh % 2 == 1 &&
                  g.kw % 2 == 1 && rates.size(0) == g.num &&
                  g.groups > 0 && g.channels % g.groups == 0 &&
                  g.out_h > 0 && g.out_w > 0,
              "adc_cpu: inconsistent shapes");
  return g;
}

// Blocks are runs of "flat rows" q = n * H_out + y (output rows of all
// samples in order), so that thin late stages still give the GEMMs enough
// pixels. Rows per block: the block's columns take about block_bytes, but
// at least min_pixels pixels when that fits in 4 * block_bytes.
int64_t rows_per_block(const Geometry& g, int64_t elem, int64_t block_bytes) {
  constexpr int64_t min_pixels = 256;
  const int64_t row_bytes = std::max<int64_t>(1, g.cols() * g.out_w * elem);
  int64_t rows = block_bytes / row_bytes;
  const int64_t wanted = (min_pixels + g.out_w - 1) / g.out_w;
  if (rows < wanted) rows = std::min(wanted, 4 * block_bytes / row_bytes);
  return std::clamp<int64_t>(rows, 1, g.num * g.out_h);
}

// Calls fn(n, y0, y1, offset) for each sample's part [y0, y1) of flat rows
// [q0, q1); offset is the part's first pixel within the block.
template <typename Fn>
void for_each_segment(const Geometry& g, int64_t q0, int64_t q1, Fn&& fn) {
  for (int64_t n = q0 / g.out_h; n * g.out_h < q1; ++n) {
    const int64_t y0 = std::max<int64_t>(q0 - n * g.out_h, 0);
    const int64_t y1 = std::min<int64_t>(q1 - n * g.out_h, g.out_h);
    fn(n, y0, y1, (n * g.out_h + y0 - q0) * g.out_w);
  }
}

at::Tensor forward(const at::Tensor& input_, const at::Tensor& weight_,
                   const at::Tensor& rates,
                   const c10::optional<at::Tensor>& bias_,
                   at::IntArrayRef stride, at::IntArrayRef padding,
                   at::IntArrayRef dilation, int64_t block_bytes) {
  const Geometry g =
      make_geometry(input_, weight_, rates, stride, padding, dilation);
  const at::Tensor input = input_.detach().contiguous();
  const at::Tensor wmat =
      weight_.detach().contiguous().view({g.out_channels, g.cols()});
  at::Tensor out = at::empty({g.num, g.out_channels, g.out_h, g.out_w},
                             input.options());
  if (g.num == 0) return out;
  const PlaneRates pr = plane_rates(rates, g);
  const int64_t rows = rows_per_block(g, input.element_size(), block_bytes);
  const int64_t flat_rows = g.num * g.out_h;
  const int64_t blocks = (flat_rows + rows - 1) / rows;
  const int64_t threads = at::get_num_threads();
  at::Tensor col_buf =
      at::empty({threads, g.cols() * rows * g.out_w}, input.options());
  at::Tensor zeros = at::zeros({g.width}, input.options());
  at::Tensor out2 = out.view({g.num, g.out_channels, g.pixels()});
  c10::optional<at::Tensor> bias;
  if (bias_.has_value() && bias_->defined())
    bias = bias_->detach().contiguous().view({g.out_channels, 1});

  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "adc_cpu_forward", [&] {
    const scalar_t* in = input.data_ptr<scalar_t>();
    const scalar_t* zp = zeros.data_ptr<scalar_t>();
    at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
      at::Tensor col_t = col_buf[at::get_thread_num()];
      scalar_t* col = col_t.data_ptr<scalar_t>();
      for (int64_t block = begin; block < end; ++block) {
        const int64_t q0 = block * rows;
        const int64_t q1 = std::min(q0 + rows, flat_rows);
        const int64_t len = (q1 - q0) * g.out_w;
        for_each_segment(g, q0, q1, [&](int64_t n, int64_t y0, int64_t y1,
                                        int64_t offset) {
          build_columns<scalar_t>(g, pr, in, zp, n, y0, y1, col + offset,
                                  len);
        });
        const at::Tensor cols =
            col_t.narrow(0, 0, g.cols() * len).view({g.cols(), len});
        const at::Tensor res = gemm_nt(wmat, cols.t());
        for_each_segment(g, q0, q1, [&](int64_t n, int64_t y0, int64_t y1,
                                        int64_t offset) {
          const int64_t part = (y1 - y0) * g.out_w;
          at::Tensor dst = out2[n].narrow(1, y0 * g.out_w, part);
          const at::Tensor src = res.narrow(1, offset, part);
          if (bias.has_value())
            at::add_out(dst, src, *bias);
          else
            dst.copy_(src);
        });
      }
    });
  });
  return out;
}

// Returns {grad_input, grad_weight, grad_rates} (undefined when not needed).
std::vector<at::Tensor> backward(const at::Tensor& grad_out_,
                                 const at::Tensor& input_,
                                 const at::Tensor& weight_,
                                 const at::Tensor& rates,
                                 at::IntArrayRef stride,
                                 at::IntArrayRef padding,
                                 at::IntArrayRef dilation, bool need_input,
                                 bool need_weight, bool need_rates,
                                 int64_t block_bytes) {
  const Geometry g =
      make_geometry(input_, weight_, rates, stride, padding, dilation);
  const at::Tensor input = input_.detach().contiguous();
  const at::Tensor grad_out =
      grad_out_.detach().contiguous().view({g.num, g.out_channels, g.pixels()});
  const at::Tensor wmat =
      weight_.detach().contiguous().view({g.out_channels, g.cols()});
  const at::Tensor wmat_t = wmat.t().contiguous();
  const auto opts = input.options();
  at::Tensor grad_input, grad_weight, grad_rates;
  if (need_input) grad_input = at::zeros_like(input);
  const PlaneRates pr = plane_rates(rates, g);
  at::Tensor grad_rho;
  if (need_rates)
    grad_rho = at::zeros({g.num, g.channels}, opts.dtype(at::kDouble));
  const int64_t rows = rows_per_block(g, input.element_size(), block_bytes);
  // A sample's input gradient is written by one thread only (its blocks
  // scatter into overlapping rows), so threads split the samples; with fewer
  // samples than threads the GEMMs use the threads instead.
  const int64_t threads = at::get_num_threads();
  const bool split_samples = g.num >= threads;
  const int64_t slots = split_samples ? threads : 1;
  at::Tensor col_buf = at::empty({slots, g.cols() * rows * g.out_w}, opts);
  at::Tensor weight_acc;
  if (need_weight)
    weight_acc = at::zeros({slots, g.out_channels, g.cols()}, opts);
  at::Tensor zeros = at::zeros({g.width}, opts);
  at::Tensor sinks = at::empty({slots, g.width}, opts);

  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "adc_cpu_backward", [&] {
    const scalar_t* in = input.data_ptr<scalar_t>();
    const scalar_t* zp = zeros.data_ptr<scalar_t>();
    scalar_t* gin = need_input ? grad_input.data_ptr<scalar_t>() : nullptr;
    double* grho = need_rates ? grad_rho.data_ptr<double>() : nullptr;
    // Samples [n0, n1), block by block, with the slot's scratch buffers.
    auto samples = [&](int64_t n0, int64_t n1, int64_t slot) {
      at::Tensor col_t = col_buf[slot];
      scalar_t* col = col_t.data_ptr<scalar_t>();
      scalar_t* sink = sinks[slot].data_ptr<scalar_t>();
      for (int64_t q0 = n0 * g.out_h; q0 < n1 * g.out_h; q0 += rows) {
        const int64_t q1 = std::min(q0 + rows, n1 * g.out_h);
        const int64_t len = (q1 - q0) * g.out_w;
        std::vector<at::Tensor> parts;
        for_each_segment(g, q0, q1, [&](int64_t n, int64_t y0, int64_t y1,
                                        int64_t) {
          parts.push_back(
              grad_out[n].narrow(1, y0 * g.out_w, (y1 - y0) * g.out_w));
        });
        const at::Tensor go = at::cat(parts, 1);  // (C_out, len)
        if (need_weight) {
          for_each_segment(g, q0, q1, [&](int64_t n, int64_t y0, int64_t y1,
                                          int64_t offset) {
            build_columns<scalar_t>(g, pr, in, zp, n, y0, y1, col + offset,
                                    len);
          });
          const at::Tensor cols =
              col_t.narrow(0, 0, g.cols() * len).view({g.cols(), len});
          weight_acc[slot].add_(gemm_nt(go, cols));
        }
        if (need_input || need_rates) {
          const at::Tensor gcols = gemm_nt(wmat_t, go.t()).contiguous();
          const scalar_t* gc = gcols.data_ptr<scalar_t>();
          for_each_segment(g, q0, q1, [&](int64_t n, int64_t y0, int64_t y1,
                                          int64_t offset) {
            pull_back_columns<scalar_t>(g, pr, in, zp, sink, gc + offset,
                                        len, n, y0, y1, gin, grho);
          });
        }
      }
    };
    if (split_samples) {
      at::parallel_for(0, g.num, 1, [&](int64_t begin, int64_t end) {
        samples(begin, end, at::get_thread_num());
      });
    } else {
      samples(0, g.num, 0);
    }
  });
  if (need_weight)
    grad_weight = weight_acc.sum(0).view_as(weight_);
  if (need_rates)
    grad_rates = grad_rho.view({g.num, g.groups, g.channels / g.groups})
                     .sum(2)
                     .to(rates.scalar_type());
  return {grad_input, grad_weight, grad_rates};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "Native CPU kernels of adaptive dilated convolution (mmadc).";
  m.def("set_onednn", [](bool on) { use_onednn = on; },
        "Use oneDNN for float32 GEMMs when available (default true)");
  m.def("has_onednn", []() { return onednn_linear() != nullptr; },
        "Whether PyTorch provides the oneDNN matmul operator");
  m.def("forward", &forward, "ADC forward (CPU, float32/float64)",
        py::arg("input"), py::arg("weight"), py::arg("rates"),
        py::arg("bias"), py::arg("stride"), py::arg("padding"),
        py::arg("dilation"), py::arg("block_bytes"));
  m.def("backward", &backward, "ADC input/weight/rate gradients (CPU)",
        py::arg("grad_out"), py::arg("input"), py::arg("weight"),
        py::arg("rates"), py::arg("stride"), py::arg("padding"),
        py::arg("dilation"), py::arg("need_input"), py::arg("need_weight"),
        py::arg("need_rates"), py::arg("block_bytes"));
}
