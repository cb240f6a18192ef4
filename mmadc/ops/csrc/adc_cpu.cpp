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
// sampling loops are contiguous, vectorisable row operations (for stride 1
// and same-size rows, one loop over a whole run of rows, with the few edge
// columns redone separately). The tap columns are built per block of output
// rows, sized to stay in the L2 cache, and consumed at once by a GEMM (as in
// an im2col convolution), so the 9x-sized tap image never goes through main
// memory. The backward recomputes the columns (nothing but the input, weight
// and rates is saved) and applies the adjoint of the sampling (a scatter
// into rows the calling thread owns) in the same walk as the rate gradient.
//
// Reads outside the image use zero weights or a zero row rather than
// branches, so a non-finite input value can reach outputs through a zero
// weight (0 * inf = NaN), as in the reference's interpolation.
#include <torch/extension.h>

#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>
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

// The loops over one tap's output row come in two parts: the interior
// [lo, hi) without bounds checks (with hi beyond the row for a flattened run
// of rows, see build_columns) and the checked edges [0, lo) and
// [hi, out_w). xs = x * s + off is the first of the two source columns.

template <typename T>
T at_or_zero(const T* row, int64_t x, int64_t width) {
  return (x >= 0 && x < width) ? row[x] : T(0);
}

// Interior of the forward read:
// dst[x] = c00 r0[xs] + c01 r0[xs + 1] + c10 r1[xs] + c11 r1[xs + 1].
template <typename T>
void sample_interior(T* __restrict dst, const T* __restrict r0,
                     const T* __restrict r1, T c00, T c01, T c10, T c11,
                     int64_t off, int64_t s, int64_t lo, int64_t hi) {
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

template <typename T>
void sample_edges(T* dst, const T* r0, const T* r1, T c00, T c01, T c10,
                  T c11, int64_t off, int64_t s, int64_t lo, int64_t hi,
                  int64_t out_w, int64_t width) {
  for (int64_t x = lo == 0 ? hi : 0; x < out_w; x = x + 1 == lo ? hi : x + 1) {
    const int64_t xs = x * s + off;
    dst[x] = c00 * at_or_zero(r0, xs, width) +
             c01 * at_or_zero(r0, xs + 1, width) +
             c10 * at_or_zero(r1, xs, width) +
             c11 * at_or_zero(r1, xs + 1, width);
  }
}

// Interior of the adjoint of one source row's share of the read:
// row[xs] += a v[x], row[xs + 1] += b v[x].
template <typename T>
void scatter_interior(T* __restrict row, const T* __restrict v, T a, T b,
                      int64_t off, int64_t s, int64_t lo, int64_t hi) {
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

template <typename T>
void scatter_edges(T* row, const T* v, T a, T b, int64_t off, int64_t s,
                   int64_t lo, int64_t hi, int64_t out_w, int64_t width) {
  for (int64_t x = lo == 0 ? hi : 0; x < out_w; x = x + 1 == lo ? hi : x + 1) {
    const int64_t xs = x * s + off;
    if (xs >= 0 && xs < width) row[xs] += a * v[x];
    if (xs + 1 >= 0 && xs + 1 < width) row[xs + 1] += b * v[x];
  }
}

// Interior of the rate-gradient inner product:
// sum_x v[x] (e00 r0[xs] + e01 r0[xs + 1] + e10 r1[xs] + e11 r1[xs + 1]).
template <typename T>
double dot_interior(const T* __restrict v, const T* __restrict r0,
                    const T* __restrict r1, T e00, T e01, T e10, T e11,
                    int64_t off, int64_t s, int64_t lo, int64_t hi) {
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
  return acc;
}

template <typename T>
double dot_edges(const T* v, const T* r0, const T* r1, T e00, T e01, T e10,
                 T e11, int64_t off, int64_t s, int64_t lo, int64_t hi,
                 int64_t out_w, int64_t width) {
  double total = 0;
  for (int64_t x = lo == 0 ? hi : 0; x < out_w; x = x + 1 == lo ? hi : x + 1) {
    const int64_t xs = x * s + off;
    total += v[x] * (e00 * at_or_zero(r0, xs, width) +
                     e01 * at_or_zero(r0, xs + 1, width) +
                     e10 * at_or_zero(r1, xs, width) +
                     e11 * at_or_zero(r1, xs + 1, width));
  }
  return total;
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

// A part of the work of one sample: output rows [y0, y1), channels [c0, c1).
struct Span {
  int64_t n, y0, y1, c0, c1;
};

// An edge column x of a flattened run: its two source columns clamped into
// the row, with the interpolation weight of a column outside it set to zero
// (so a run's edge columns need no bounds checks either).
template <typename T>
struct EdgeColumn {
  int64_t x, left, right;
  T w_left, w_right;
  T in_left, in_right;  // 1 for a source column inside the row, else 0
};

template <typename T, typename Fn>
void for_each_edge_column(int64_t off, T frac, int64_t lo, int64_t hi,
                          int64_t width, Fn&& fn) {
  auto column = [&](int64_t x) {
    const int64_t xs = x + off;
    const bool left = xs >= 0 && xs < width;
    const bool right = xs + 1 >= 0 && xs + 1 < width;
    fn(EdgeColumn<T>{x, std::clamp<int64_t>(xs, 0, width - 1),
                     std::clamp<int64_t>(xs + 1, 0, width - 1),
                     left ? T(1) - frac : T(0), right ? frac : T(0),
                     T(left), T(right)});
  };
  for (int64_t x = 0; x < lo; ++x) column(x);
  for (int64_t x = hi; x < width; ++x) column(x);
}

// One tap (c, i, j) of a span: its two axis taps, the interior columns
// [lo, hi) and the rows [ya, yb) of the span whose two source rows are
// both inside the image.
template <typename T>
struct TapGeometry {
  int64_t c, i, j;
  AxisTap<T> th, tw;
  int64_t lo, hi, ya, yb;
  // A run of rows can be processed as one flattened row: stride 1 and
  // output rows as long as input rows, so output (y, x) and its source
  // (y + off_h, x + off_w) advance together through memory.
  bool flat;
};

template <typename T, typename Fn>
void for_each_tap(const Geometry& g, const PlaneRates& pr, const Span& s,
                  Fn&& fn) {
  const bool flat = g.sh == 1 && g.sw == 1 && g.out_w == g.width;
  for (int64_t c = s.c0; c < s.c1; ++c) {
    const int64_t plane = s.n * g.channels + c;
    for (int64_t i = 0; i < g.kh; ++i) {
      const auto th =
          axis_tap<T>(pr.h[plane], i - g.kh / 2, g.base_y(), g.dh);
      int64_t ya, yb;
      interior(th.offset, g.sh, g.height, g.out_h, &ya, &yb);
      ya = std::clamp(ya, s.y0, s.y1);
      yb = std::clamp(yb, ya, s.y1);
      for (int64_t j = 0; j < g.kw; ++j) {
        const auto tw =
            axis_tap<T>(pr.w[plane], j - g.kw / 2, g.base_x(), g.dw);
        int64_t lo, hi;
        interior(tw.offset, g.sw, g.width, g.out_w, &lo, &hi);
        fn(TapGeometry<T>{c, i, j, th, tw, lo, hi, ya, yb,
                          flat && hi > lo && yb > ya});
      }
    }
  }
}

// Tap columns of a span: column (c, i, j) of output (y, x) goes to
// col[((c * kh + i) * kw + j) * ld + (y - y0) * W_out + x].
template <typename T>
void build_columns(const Geometry& g, const PlaneRates& pr, const T* input,
                   const T* zeros, const Span& s, T* col, int64_t ld) {
  const T* image = input + s.n * g.channels * g.height * g.width;
  for_each_tap<T>(g, pr, s, [&](const TapGeometry<T>& t) {
    const T* plane = image + t.c * g.height * g.width;
    const T uy = T(1) - t.th.frac, ux = T(1) - t.tw.frac;
    const T c00 = uy * ux, c01 = uy * t.tw.frac, c10 = t.th.frac * ux,
            c11 = t.th.frac * t.tw.frac;
    T* dst = col + ((t.c * g.kh + t.i) * g.kw + t.j) * ld - s.y0 * g.out_w;
    auto row = [&](int64_t y) { return y * g.sh + t.th.offset; };
    auto src = [&](int64_t ys) {
      return ys >= 0 && ys < g.height ? plane + ys * g.width : zeros;
    };
    for (int64_t y = s.y0; y < s.y1; ++y) {
      if (t.flat && y == t.ya) {
        // rows [ya, yb) as one run (the edges it gets wrong are redone
        // below)
        const int64_t ys = row(y);
        sample_interior<T>(dst + y * g.out_w, plane + ys * g.width,
                           plane + (ys + 1) * g.width, c00, c01, c10, c11,
                           t.tw.offset, 1, t.lo,
                           (t.yb - t.ya - 1) * g.out_w + t.hi);
        for_each_edge_column<T>(
            t.tw.offset, t.tw.frac, t.lo, t.hi, g.width,
            [&](const EdgeColumn<T>& e) {
              for (int64_t y2 = t.ya; y2 < t.yb; ++y2) {
                const T* r0 = plane + row(y2) * g.width;
                const T* r1 = r0 + g.width;
                dst[y2 * g.out_w + e.x] =
                    uy * (e.w_left * r0[e.left] + e.w_right * r0[e.right]) +
                    t.th.frac *
                        (e.w_left * r1[e.left] + e.w_right * r1[e.right]);
              }
            });
        y = t.yb;
        if (y == s.y1) break;
      }
      const int64_t ys = row(y);
      const T* r0 = src(ys);
      const T* r1 = src(ys + 1);
      sample_interior<T>(dst + y * g.out_w, r0, r1, c00, c01, c10, c11,
                         t.tw.offset, g.sw, t.lo, t.hi);
      sample_edges<T>(dst + y * g.out_w, r0, r1, c00, c01, c10, c11,
                      t.tw.offset, g.sw, t.lo, t.hi, g.out_w, g.width);
    }
  });
}

// Input and rate gradients of a span from its column gradients (laid out
// as in build_columns; the edges of flattened runs are zeroed on the way).
// Writes only the span's channels of sample n.
template <typename T>
void pull_back_columns(const Geometry& g, const PlaneRates& pr, const T* input,
                       const T* zeros, T* sink, T* col_grad, int64_t ld,
                       const Span& s, T* grad_input, double* grad_rate) {
  const int64_t plane_size = g.height * g.width;
  const T* image = input + s.n * g.channels * plane_size;
  for_each_tap<T>(g, pr, s, [&](const TapGeometry<T>& t) {
    T* v = col_grad + ((t.c * g.kh + t.i) * g.kw + t.j) * ld - s.y0 * g.out_w;
    const T* plane = image + t.c * plane_size;
    T* gplane = grad_input == nullptr
                    ? nullptr
                    : grad_input + (s.n * g.channels + t.c) * plane_size;
    const T fy = t.th.frac, fx = t.tw.frac;
    const T uy = T(1) - fy, ux = T(1) - fx;
    // d(sample)/d(rate) = slope_h * dM/dy + slope_w * dM/dx, with the
    // interpolant's derivatives expanded over the four neighbours.
    const T sy = t.th.slope, sx = t.tw.slope;
    const bool rate = grad_rate != nullptr && (sy != T(0) || sx != T(0));
    const T e00 = -sy * ux - sx * uy, e01 = -sy * fx + sx * uy,
            e10 = sy * ux - sx * fy, e11 = sy * fx + sx * fy;
    const int64_t off = t.tw.offset;
    double acc = 0;
    // One output row (checked edges; the interior too unless flattened).
    auto one_row = [&](int64_t y, bool with_interior) {
      const int64_t ys = y * g.sh + t.th.offset;
      const bool v0 = ys >= 0 && ys < g.height;
      const bool v1 = ys + 1 >= 0 && ys + 1 < g.height;
      T* vy = v + y * g.out_w;
      if (gplane != nullptr) {
        // rows outside the image receive their share in a scratch row
        T* g0 = v0 ? gplane + ys * g.width : sink;
        T* g1 = v1 ? gplane + (ys + 1) * g.width : sink;
        scatter_edges<T>(g0, vy, uy * ux, uy * fx, off, g.sw, t.lo, t.hi,
                         g.out_w, g.width);
        scatter_edges<T>(g1, vy, fy * ux, fy * fx, off, g.sw, t.lo, t.hi,
                         g.out_w, g.width);
        if (with_interior) {
          scatter_interior<T>(g0, vy, uy * ux, uy * fx, off, g.sw, t.lo,
                              t.hi);
          scatter_interior<T>(g1, vy, fy * ux, fy * fx, off, g.sw, t.lo,
                              t.hi);
        }
      }
      if (rate) {
        const T* r0 = v0 ? plane + ys * g.width : zeros;
        const T* r1 = v1 ? plane + (ys + 1) * g.width : zeros;
        acc += dot_edges<T>(vy, r0, r1, e00, e01, e10, e11, off, g.sw, t.lo,
                            t.hi, g.out_w, g.width);
        if (with_interior)
          acc += dot_interior<T>(vy, r0, r1, e00, e01, e10, e11, off, g.sw,
                                 t.lo, t.hi);
      }
    };
    for (int64_t y = s.y0; y < s.y1; ++y) {
      if (!(t.flat && y == t.ya)) {
        one_row(y, true);
        continue;
      }
      // Rows [ya, yb) as one run: edge columns first, then their entries of
      // v are zeroed so that the run's wrapped reads and writes at them add
      // nothing (v is this call's own scratch).
      for_each_edge_column<T>(off, fx, t.lo, t.hi, g.width, [&](
                                                                const
                                                                EdgeColumn<T>&
                                                                    e) {
        for (int64_t y2 = t.ya; y2 < t.yb; ++y2) {
          T* vy = v + y2 * g.out_w + e.x;
          const int64_t ys2 = y2 + t.th.offset;
          if (gplane != nullptr) {
            T* g0 = gplane + ys2 * g.width;
            T* g1 = g0 + g.width;
            g0[e.left] += uy * e.w_left * *vy;
            g0[e.right] += uy * e.w_right * *vy;
            g1[e.left] += fy * e.w_left * *vy;
            g1[e.right] += fy * e.w_right * *vy;
          }
          if (rate) {
            const T* a = plane + ys2 * g.width;
            const T* b = a + g.width;
            acc += *vy * (e.in_left * (e00 * a[e.left] + e10 * b[e.left]) +
                          e.in_right * (e01 * a[e.right] + e11 * b[e.right]));
          }
          *vy = T(0);
        }
      });
      const int64_t ys = t.ya + t.th.offset;
      const int64_t end = (t.yb - t.ya - 1) * g.out_w + t.hi;
      T* vy = v + t.ya * g.out_w;
      if (gplane != nullptr) {
        scatter_interior<T>(gplane + ys * g.width, vy, uy * ux, uy * fx, off,
                            1, t.lo, end);
        scatter_interior<T>(gplane + (ys + 1) * g.width, vy, fy * ux,
                            fy * fx, off, 1, t.lo, end);
      }
      if (rate)
        acc += dot_interior<T>(vy, plane + ys * g.width,
                               plane + (ys + 1) * g.width, e00, e01, e10, e11,
                               off, 1, t.lo, end);
      y = t.yb - 1;
    }
    if (rate) grad_rate[s.n * g.channels + t.c] += acc;
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

// Schedule: each thread builds the columns of a run of output rows in its
// L2 cache and multiplies them at once with its own single-threaded GEMM.
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

// What one call works on; the tensors are detached and contiguous.
template <typename T>
struct Problem {
  Geometry g;
  PlaneRates pr;
  const T* input;
  const T* zeros;  // a zero row: the source of rows outside the image
  at::Tensor wmat;  // (C_out, C_in * kh * kw)
  int64_t block_bytes;
};

// input: detached and contiguous; zeros: a zero row of the input's width.
template <typename T>
Problem<T> make_problem(const Geometry& g, const at::Tensor& input,
                        const at::Tensor& weight, const at::Tensor& rates,
                        const at::Tensor& zeros, int64_t block_bytes) {
  return {g,
          plane_rates(rates, g),
          input.data_ptr<T>(),
          zeros.data_ptr<T>(),
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
  at::Tensor col_buf = at::empty({threads, g.cols() * rows * g.out_w},
                                 out2.options());
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
        build_columns<T>(g, pb.pr, pb.input, pb.zeros, s, col + offset, len);
      });
      const at::Tensor res = gemm_nt(
          pb.wmat, col_t.narrow(0, 0, g.cols() * len).view({g.cols(), len})
                       .t());
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

at::Tensor forward(const at::Tensor& input_, const at::Tensor& weight_,
                   const at::Tensor& rates,
                   const c10::optional<at::Tensor>& bias_,
                   at::IntArrayRef stride, at::IntArrayRef padding,
                   at::IntArrayRef dilation, int64_t block_bytes) {
  const Geometry g =
      make_geometry(input_, weight_, rates, stride, padding, dilation);
  const at::Tensor input = input_.detach().contiguous();
  at::Tensor out = at::empty({g.num, g.out_channels, g.out_h, g.out_w},
                             input.options());
  if (g.num == 0) return out;
  at::Tensor out2 = out.view({g.num, g.out_channels, g.pixels()});
  c10::optional<at::Tensor> bias;
  if (bias_.has_value() && bias_->defined())
    bias = bias_->detach().contiguous().view({g.out_channels, 1});
  const at::Tensor zeros = at::zeros({g.width}, input.options());
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "adc_cpu_forward", [&] {
    forward_row_blocks(
        make_problem<scalar_t>(g, input, weight_, rates, zeros, block_bytes),
        out2, bias);
  });
  return out;
}

// Gradient outputs of the backward; null pointers/undefined when not
// needed.
template <typename T>
struct Gradients {
  T* input;       // (N, C_in, H, W), zero-initialised, scattered into
  double* rho;    // (N, C_in) rate gradient of each plane
  bool weight;    // whether to compute the weight gradient
  at::Tensor weight_grad;  // (C_out, C_in * kh * kw), set by the backward
};

template <typename T>
void backward_row_blocks(const Problem<T>& pb, const at::Tensor& grad_out,
                         Gradients<T>& grads) {
  const Geometry& g = pb.g;
  const at::Tensor wmat_t = pb.wmat.t().contiguous();
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
  // samples than threads the GEMMs use the threads instead.
  const int64_t threads = at::get_num_threads();
  const int64_t slots = g.num >= threads ? threads : 1;
  // a block never spans more than one thread's samples
  rows = std::clamp<int64_t>((g.num + slots - 1) / slots * g.out_h, 1, rows);
  const auto opts = grad_out.options();
  at::Tensor col_buf = at::empty({slots, g.cols() * rows * g.out_w}, opts);
  at::Tensor sinks = at::empty({slots, g.width}, opts);
  std::vector<at::Tensor> weight_acc(slots);
  // Samples [n0, n1), block by block, with the slot's scratch buffers.
  auto samples = [&](int64_t n0, int64_t n1, int64_t slot) {
    at::Tensor col_t = col_buf[slot];
    T* col = col_t.data_ptr<T>();
    T* sink = sinks[slot].data_ptr<T>();
    for (int64_t q0 = n0 * g.out_h; q0 < n1 * g.out_h; q0 += rows) {
      const int64_t q1 = std::min(q0 + rows, n1 * g.out_h);
      const int64_t len = (q1 - q0) * g.out_w;
      std::vector<at::Tensor> parts;
      for_each_segment(g, q0, q1, [&](const Span& s, int64_t) {
        parts.push_back(grad_out[s.n].narrow(1, s.y0 * g.out_w,
                                             (s.y1 - s.y0) * g.out_w));
      });
      const at::Tensor go = at::cat(parts, 1);  // (C_out, len)
      if (grads.weight) {
        for_each_segment(g, q0, q1, [&](const Span& s, int64_t offset) {
          build_columns<T>(g, pb.pr, pb.input, pb.zeros, s, col + offset,
                           len);
        });
        at::Tensor gw = gemm_nt(
            go, col_t.narrow(0, 0, g.cols() * len).view({g.cols(), len}));
        if (weight_acc[slot].defined())
          weight_acc[slot].add_(gw);
        else
          weight_acc[slot] = gw;
      }
      if (grads.input != nullptr || grads.rho != nullptr) {
        const at::Tensor gcols = gemm_nt(wmat_t, go.t()).contiguous();
        T* gc = gcols.data_ptr<T>();
        for_each_segment(g, q0, q1, [&](const Span& s, int64_t offset) {
          pull_back_columns<T>(g, pb.pr, pb.input, pb.zeros, sink,
                               gc + offset, len, s, grads.input, grads.rho);
        });
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
  const at::Tensor grad_out = grad_out_.detach().contiguous().view(
      {g.num, g.out_channels, g.pixels()});
  const auto opts = input.options();
  at::Tensor grad_input, grad_weight, grad_rates, grad_rho;
  if (need_input) grad_input = at::zeros_like(input);
  if (need_rates)
    grad_rho = at::zeros({g.num, g.channels}, opts.dtype(at::kDouble));
  const at::Tensor zeros = at::zeros({g.width}, opts);
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "adc_cpu_backward", [&] {
    const auto pb =
        make_problem<scalar_t>(g, input, weight_, rates, zeros, block_bytes);
    Gradients<scalar_t> grads{
        need_input ? grad_input.data_ptr<scalar_t>() : nullptr,
        need_rates ? grad_rho.data_ptr<double>() : nullptr, need_weight,
        at::Tensor()};
    backward_row_blocks(pb, grad_out, grads);
    grad_weight = grads.weight_grad;
  });
  if (need_weight) {
    grad_weight = grad_weight.defined() ? grad_weight.view_as(weight_)
                                        : at::zeros_like(weight_);
  }
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
