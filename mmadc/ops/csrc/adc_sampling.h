// Copyright (c) mmadc contributors. All rights reserved.
//
// The sampling of the native ADC CPU kernel (adc_cpu.cpp, which includes
// this header into its one translation unit): the geometry of a call, the
// integer part and weight of every tap (axis_tap), and the separable
// bilinear reads and their adjoints, per channel, into and out of the tap
// columns of a block of output rows (build_columns, pull_back_columns).
#pragma once

#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

// The innermost loops are also compiled for AVX-512 (x86-64-v4) and for
// AVX2 + FMA (x86-64-v3), the best picked when the library loads; the
// default build stays portable (GCC function multiversioning, x86-64 with
// glibc only); README's kernel paragraph has the measured difference.
// MMADC_ADC_PORTABLE builds the default only (the tests compare it too).
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    defined(__GLIBC__) && !defined(MMADC_ADC_PORTABLE)
#define ADC_HOT_LOOP \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define ADC_HOT_LOOP
#endif

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

// Strided taps are read in phase coordinates: with stride s, source index
// s * u + p is element u of phase plane p (for stride 2: the even and the
// odd rows or columns of the image, see to_phase_planes). Every tap reads
// its phase planes with unit stride, so the loops below know no strides,
// and a stride-2 tap is as regular as a stride-1 one.

// One tap along one axis: output u reads its two interpolation neighbours
// k = 0, 1 at element u + start[k] of phase plane phase[k].
template <typename T>
struct AxisTap {
  int64_t phase[2], start[2];
  T weight[2];  // interpolation weights 1 - frac and frac
  T slope;      // d(shift)/d(rate) = dilation * tap
  // outputs [lo, hi) have both neighbours inside the plane's [0, len)
  int64_t lo, hi;
};

template <typename T>
AxisTap<T> axis_tap(double rho, int64_t tap, int64_t base, int64_t dilation,
                    int64_t stride, int64_t len, int64_t out_len) {
  // Shift in float64 whatever T (like the reference): the floor must not
  // flip because of rounding.
  const double shift = rho * static_cast<double>(tap);
  // First interpolation row: the floor, except for a negative tap exactly
  // on a row (then one lower, weight 1 on the second row), so that at every
  // kink the rate gradient is the derivative as the rate increases (as in
  // the reference's base_row).
  const double fl = tap < 0 ? std::ceil(shift) - 1 : std::floor(shift);
  const T frac = static_cast<T>(shift - fl);
  const int64_t first = base + static_cast<int64_t>(fl);
  AxisTap<T> a;
  for (int k = 0; k < 2; ++k) {
    a.start[k] = stride == 1 ? first + k : floor_div(first + k, stride);
    a.phase[k] = first + k - a.start[k] * stride;
  }
  a.weight[0] = T(1) - frac;
  a.weight[1] = frac;
  a.slope = static_cast<T>(dilation * tap);
  a.lo = std::clamp<int64_t>(std::max(-a.start[0], -a.start[1]), 0, out_len);
  a.hi = std::clamp<int64_t>(std::min(len - a.start[0], len - a.start[1]),
                             a.lo, out_len);
  return a;
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

// An image (or its gradient) as phase planes: (N, C, sh, sw, hq, wq) with
// hq = ceil(H / sh), wq = ceil(W / sw); the elements beyond the image (odd
// sizes) are zero, like the outside. With stride 1 this is the NCHW tensor.
template <typename P>  // const T* or T*
struct Planes {
  P data;
  int64_t channels, sh, sw, hq, wq;
  P plane(int64_t n, int64_t c, int64_t p, int64_t q) const {
    return data + (((n * channels + c) * sh + p) * sw + q) * hq * wq;
  }
};

// A part of the work of one sample: output rows [y0, y1), channels [c0, c1).
struct Span {
  int64_t n, y0, y1, c0, c1;
};

// The sampling is separable: tap (i, j) of output row y is the vertical
// interpolation, between rows y + start_v[k] (k = 0, 1), of row buffers
// that hold the horizontal interpolation of tap column j:
//   H[j][p][row][x] = sum_l w_l P(p, q_l)[row][x + start_h[l]]
// (zero outside the plane). H rows are as long as output rows, so the nine
// vertical passes are single loops over a whole block with nothing to
// check; only the three horizontal passes per channel see the image's
// edges. The backward goes the other way: vertical adjoints into row
// buffers U[j][p], then one horizontal adjoint per row into the input
// gradient; the rate gradient needs, besides H, the horizontal differences
//   D[j][p][row][x] = P(p, q_1)[row][x + start_h[1]]
//                     - P(p, q_0)[row][x + start_h[0]].

// The taps of one channel of a span, and the window of phase-plane rows
// [r0, r1) that its vertical taps read (rows outside [0, hq) are zero).
template <typename T>
struct ChannelTaps {
  std::vector<AxisTap<T>> v, h;  // kh vertical, kw horizontal taps
  int64_t r0, r1;
  int64_t rows() const { return r1 - r0; }
};

template <typename T>
void channel_taps(const Geometry& g, const PlaneRates& pr, int64_t hq,
                  int64_t wq, const Span& s, int64_t c, ChannelTaps<T>* t) {
  const int64_t plane = s.n * g.channels + c;
  t->v.resize(g.kh);
  t->h.resize(g.kw);
  for (int64_t j = 0; j < g.kw; ++j)
    t->h[j] = axis_tap<T>(pr.w[plane], j - g.kw / 2, g.base_x(), g.dw, g.sw,
                          wq, g.out_w);
  t->r0 = s.y0;
  t->r1 = s.y1;
  for (int64_t i = 0; i < g.kh; ++i) {
    auto& v = t->v[i];
    v = axis_tap<T>(pr.h[plane], i - g.kh / 2, g.base_y(), g.dh, g.sh, hq,
                    g.out_h);
    for (int k = 0; k < 2; ++k) {
      // A neighbour whose rows are all outside the plane reads zero rows
      // whatever its start: keep the window small under huge rates.
      v.start[k] = std::clamp<int64_t>(v.start[k], -s.y1, hq - s.y0);
      t->r0 = std::min(t->r0, s.y0 + v.start[k]);
      t->r1 = std::max(t->r1, s.y1 + v.start[k]);
    }
  }
}

// Scratch row buffers of the calling thread, [j][p][row - r0][x].
template <typename T>
struct RowBuffers {
  std::vector<T> data;
  int64_t phases = 0, rows = 0, width = 0;
  void reset(int64_t taps, int64_t phases_, int64_t rows_, int64_t width_) {
    phases = phases_;
    rows = rows_;
    width = width_;
    data.resize(taps * phases * rows * width);
  }
  T* row(int64_t j, int64_t p, int64_t r) {
    return data.data() + ((j * phases + p) * rows + r) * width;
  }
};

// out[x] = a[x] w0 + b[x] w1 over [0, n).
template <typename T>
ADC_HOT_LOOP void lerp_run(T* __restrict out, const T* __restrict a,
                           const T* __restrict b, T w0, T w1, int64_t n) {
#pragma omp simd
  for (int64_t x = 0; x < n; ++x) out[x] = w0 * a[x] + w1 * b[x];
}

// The backward of one tap's vertical pass in one loop over its column
// gradient v, fused with the rebuilding of its column for the weight
// gradient: the column col[x] = w0 h0[x] + w1 h1[x] (kCol), the adjoint
// u0[x] += w0 v[x], u1[x] += w1 v[x] (kAdjoint; u0 and u1 are separate
// buffers, the two neighbours' shares, so that nothing aliases), and the
// vertical part of the rate derivative, returned (kDot):
//   sum_x v[x] (h1[x] - h0[x]).
// (The horizontal part is taken later, once per tap column, from the sum
// of the adjoints; see pull_back_columns.)
template <typename T, bool kCol, bool kAdjoint, bool kDot>
ADC_HOT_LOOP T tap_backward_run(T* __restrict col, T* __restrict u0,
                                T* __restrict u1, const T* __restrict v, T w0,
                                T w1, const T* __restrict h0,
                                const T* __restrict h1, int64_t n) {
  T acc = 0;
#pragma omp simd reduction(+ : acc)
  for (int64_t x = 0; x < n; ++x) {
    if constexpr (kCol) col[x] = w0 * h0[x] + w1 * h1[x];
    if constexpr (kAdjoint) {
      u0[x] += w0 * v[x];
      u1[x] += w1 * v[x];
    }
    if constexpr (kDot) acc += v[x] * (h1[x] - h0[x]);
  }
  return acc;
}

// tap_backward_run with the parts whose outputs are given (col, u0, or
// dot), returned as double.
template <typename T>
double tap_backward(T* col, T* u0, T* u1, const T* v, T w0, T w1, const T* h0,
                    const T* h1, bool dot, int64_t n) {
  const bool c = col != nullptr, u = u0 != nullptr;
  if (c && u && dot)
    return tap_backward_run<T, true, true, true>(col, u0, u1, v, w0, w1, h0,
                                                 h1, n);
  if (c && u)
    return tap_backward_run<T, true, true, false>(col, u0, u1, v, w0, w1, h0,
                                                  h1, n);
  if (c && dot)
    return tap_backward_run<T, true, false, true>(col, u0, u1, v, w0, w1, h0,
                                                  h1, n);
  if (u && dot)
    return tap_backward_run<T, false, true, true>(col, u0, u1, v, w0, w1, h0,
                                                  h1, n);
  if (c)
    return tap_backward_run<T, true, false, false>(col, u0, u1, v, w0, w1, h0,
                                                   h1, n);
  if (u)
    return tap_backward_run<T, false, true, false>(col, u0, u1, v, w0, w1, h0,
                                                   h1, n);
  if (dot)
    return tap_backward_run<T, false, false, true>(col, u0, u1, v, w0, w1, h0,
                                                   h1, n);
  return 0;
}

// sum_x a[x] b[x] over [0, n).
template <typename T>
ADC_HOT_LOOP T dot_run(const T* __restrict a, const T* __restrict b,
                       int64_t n) {
  T acc = 0;
#pragma omp simd reduction(+ : acc)
  for (int64_t x = 0; x < n; ++x) acc += a[x] * b[x];
  return acc;
}

// out[x] += a[x] over [0, n).
template <typename T>
ADC_HOT_LOOP void add_run(T* __restrict out, const T* __restrict a,
                          int64_t n) {
#pragma omp simd
  for (int64_t x = 0; x < n; ++x) out[x] += a[x];
}

// Interior of the horizontal pass: h[x] = w0 s0[x] + w1 s1[x] and, when d
// is given, d[x] = s1[x] - s0[x] over [lo, hi) (s offset by their starts).
template <typename T>
ADC_HOT_LOOP void horizontal_run(T* __restrict h, T* __restrict d,
                                 const T* __restrict s0,
                                 const T* __restrict s1, T w0, T w1,
                                 int64_t lo, int64_t hi) {
  if (d == nullptr) {
#pragma omp simd
    for (int64_t x = lo; x < hi; ++x) h[x] = w0 * s0[x] + w1 * s1[x];
  } else {
#pragma omp simd
    for (int64_t x = lo; x < hi; ++x) {
      h[x] = w0 * s0[x] + w1 * s1[x];
      d[x] = s1[x] - s0[x];
    }
  }
}

// The adjoint of one horizontal pass: g0[x] += w0 u[x], g1[x] += w1 u[x]
// over [lo, hi) (g offset by their starts). Stride 1: g1 = g0 + 1 is the
// same row, written as a gather over destinations so that it vectorises.
template <typename T>
ADC_HOT_LOOP void horizontal_adjoint_run(T* g0, T* g1, const T* __restrict u,
                                         T w0, T w1, int64_t lo, int64_t hi) {
  if (hi <= lo) return;
  if (g1 == g0 + 1) {
    g0[lo] += w0 * u[lo];
#pragma omp simd
    for (int64_t x = lo + 1; x < hi; ++x) g0[x] += w0 * u[x] + w1 * u[x - 1];
    g0[hi] += w1 * u[hi - 1];
  } else {
    // distinct phase planes
    T* __restrict r0 = g0;
    T* __restrict r1 = g1;
#pragma omp simd
    for (int64_t x = lo; x < hi; ++x) {
      r0[x] += w0 * u[x];
      r1[x] += w1 * u[x];
    }
  }
}

// The horizontal pass of tap column h over rows [0, rows) of a pair of
// phase planes (source rows s0, s1 of pitch wq, from the window's first
// plane row): fills hout (and dout if given), rows of out_w. With rows as
// long as output rows (wq = out_w) the interior is one loop over all rows,
// and the edge columns, which it gets wrong, are redone.
template <typename T>
void horizontal_rows(const AxisTap<T>& h, const T* s0, const T* s1, T* hout,
                     T* dout, int64_t rows, int64_t out_w, int64_t wq) {
  if (rows <= 0) return;
  const int64_t b0 = h.start[0], b1 = h.start[1];
  const bool flat = wq == out_w && h.hi > h.lo;
  const T w0 = h.weight[0], w1 = h.weight[1];
  if (flat) {
    horizontal_run<T>(hout, dout, s0 + b0, s1 + b1, w0, w1, h.lo,
                      (rows - 1) * out_w + h.hi);
  } else {
    for (int64_t r = 0; r < rows; ++r)
      horizontal_run<T>(
          hout + r * out_w, dout == nullptr ? nullptr : dout + r * out_w,
          s0 + r * wq + b0, s1 + r * wq + b1, w0, w1, h.lo, h.hi);
  }
  auto edge_column = [&](int64_t x) {
    const bool in0 = x + b0 >= 0 && x + b0 < wq;
    const bool in1 = x + b1 >= 0 && x + b1 < wq;
    for (int64_t r = 0; r < rows; ++r) {
      const T a = in0 ? s0[r * wq + x + b0] : T(0);
      const T b = in1 ? s1[r * wq + x + b1] : T(0);
      hout[r * out_w + x] = w0 * a + w1 * b;
      if (dout != nullptr) dout[r * out_w + x] = b - a;
    }
  };
  for (int64_t x = 0; x < h.lo; ++x) edge_column(x);
  for (int64_t x = h.hi; x < out_w; ++x) edge_column(x);
}

// The adjoint of horizontal_rows into the gradient rows g0, g1 (pitch wq).
// Zeroes the edge columns of u (scratch) on the way, so that a flat
// interior loop adds nothing through them.
template <typename T>
void horizontal_adjoint_rows(const AxisTap<T>& h, T* g0, T* g1, T* u,
                             int64_t rows, int64_t out_w, int64_t wq) {
  if (rows <= 0) return;
  const int64_t b0 = h.start[0], b1 = h.start[1];
  const T w0 = h.weight[0], w1 = h.weight[1];
  auto edge_column = [&](int64_t x) {
    const bool in0 = x + b0 >= 0 && x + b0 < wq;
    const bool in1 = x + b1 >= 0 && x + b1 < wq;
    for (int64_t r = 0; r < rows; ++r) {
      T& ur = u[r * out_w + x];
      if (in0) g0[r * wq + x + b0] += w0 * ur;
      if (in1) g1[r * wq + x + b1] += w1 * ur;
      ur = T(0);
    }
  };
  for (int64_t x = 0; x < h.lo; ++x) edge_column(x);
  for (int64_t x = h.hi; x < out_w; ++x) edge_column(x);
  if (wq == out_w && h.hi > h.lo) {
    horizontal_adjoint_run<T>(g0 + b0, g1 + b1, u, w0, w1, h.lo,
                              (rows - 1) * out_w + h.hi);
  } else {
    for (int64_t r = 0; r < rows; ++r)
      horizontal_adjoint_run<T>(g0 + r * wq + b0, g1 + r * wq + b1,
                                u + r * out_w, w0, w1, h.lo, h.hi);
  }
}

// The window rows of a channel that are inside its phase planes.
template <typename T>
std::pair<int64_t, int64_t> rows_inside(const ChannelTaps<T>& t, int64_t hq) {
  const int64_t lo = std::clamp<int64_t>(0, t.r0, t.r1);
  return {lo, std::clamp(hq, lo, t.r1)};
}

// H (and D if given) of a channel: every tap column, row phase and window
// row (zero rows outside the planes).
template <typename T>
void horizontal_pass(const Geometry& g, const Planes<const T*>& image,
                     const Span& s, int64_t c, const ChannelTaps<T>& t,
                     RowBuffers<T>& hbuf, RowBuffers<T>* dbuf) {
  const auto [lo, hi] = rows_inside(t, image.hq);
  for (int64_t j = 0; j < g.kw; ++j)
    for (int64_t p = 0; p < g.sh; ++p) {
      T* hrows = hbuf.row(j, p, 0);
      T* drows = dbuf == nullptr ? nullptr : dbuf->row(j, p, 0);
      for (T* rows : {hrows, drows}) {
        if (rows == nullptr) continue;
        std::fill(rows, rows + (lo - t.r0) * g.out_w, T(0));
        std::fill(rows + (hi - t.r0) * g.out_w, rows + t.rows() * g.out_w,
                  T(0));
      }
      const auto& h = t.h[j];
      horizontal_rows<T>(
          h, image.plane(s.n, c, p, h.phase[0]) + lo * image.wq,
          image.plane(s.n, c, p, h.phase[1]) + lo * image.wq,
          hrows + (lo - t.r0) * g.out_w,
          drows == nullptr ? nullptr : drows + (lo - t.r0) * g.out_w, hi - lo,
          g.out_w, image.wq);
    }
}

// Tap columns of a span: column (c, i, j) of output (y, x) goes to
// col[(((c - c0) * kh + i) * kw + j) * ld + (y - y0) * W_out + x].
template <typename T>
void build_columns(const Geometry& g, const PlaneRates& pr,
                   const Planes<const T*>& image, const Span& s, T* col,
                   int64_t ld) {
  thread_local ChannelTaps<T> t;
  thread_local RowBuffers<T> hbuf;
  const int64_t len = (s.y1 - s.y0) * g.out_w;
  for (int64_t c = s.c0; c < s.c1; ++c) {
    channel_taps<T>(g, pr, image.hq, image.wq, s, c, &t);
    hbuf.reset(g.kw, g.sh, t.rows(), g.out_w);
    horizontal_pass<T>(g, image, s, c, t, hbuf, nullptr);
    for (int64_t i = 0; i < g.kh; ++i) {
      const auto& v = t.v[i];
      for (int64_t j = 0; j < g.kw; ++j)
        lerp_run<T>(col + (((c - s.c0) * g.kh + i) * g.kw + j) * ld,
                    hbuf.row(j, v.phase[0], s.y0 + v.start[0] - t.r0),
                    hbuf.row(j, v.phase[1], s.y0 + v.start[1] - t.r0),
                    v.weight[0], v.weight[1], len);
    }
  }
}

// Input and rate gradients of a span from its column gradients (laid out
// as in build_columns), and, if col is given, the span's columns too (as
// build_columns makes them, for the weight gradient: the walk reads the
// same rows of H). Writes only the span's channels of sample n.
//
// The rate derivative of tap (i, j) is slope_v,i dM/dy + slope_h,j dM/dx.
// Its vertical part is a dot of the tap's column gradient with the
// difference of the two H rows it reads. Its horizontal part is, summed
// over the tap column's vertical taps, the dot of their adjoint U_j (the
// sum of the two neighbours' shares) with D_j, so it is taken once per
// tap column, not per tap.
template <typename T>
void pull_back_columns(const Geometry& g, const PlaneRates& pr,
                       const Planes<const T*>& image, const T* col_grad,
                       int64_t ld, const Span& s, const Planes<T*>* grad_image,
                       double* grad_rate, T* col) {
  thread_local ChannelTaps<T> t;
  // ubuf[k]: the vertical adjoints' shares of neighbour k
  thread_local RowBuffers<T> hbuf, dbuf, ubuf[2];
  const int64_t len = (s.y1 - s.y0) * g.out_w;
  const bool input = grad_image != nullptr, rate = grad_rate != nullptr;
  for (int64_t c = s.c0; c < s.c1; ++c) {
    channel_taps<T>(g, pr, image.hq, image.wq, s, c, &t);
    if (rate || col != nullptr) {
      hbuf.reset(g.kw, g.sh, t.rows(), g.out_w);
      if (rate) dbuf.reset(g.kw, g.sh, t.rows(), g.out_w);
      horizontal_pass<T>(g, image, s, c, t, hbuf, rate ? &dbuf : nullptr);
    }
    // the tap columns whose adjoint is needed: all for the input gradient,
    // those with a horizontal slope for the rate gradient
    auto adjoint = [&](int64_t j) {
      return input || (rate && t.h[j].slope != T(0));
    };
    bool any_adjoint = false;
    for (int64_t j = 0; j < g.kw; ++j) any_adjoint = any_adjoint || adjoint(j);
    if (any_adjoint)
      for (auto& u : ubuf) {
        u.reset(g.kw, g.sh, t.rows(), g.out_w);
        std::fill(u.data.begin(), u.data.end(), T(0));
      }
    double acc = 0;
    for (int64_t i = 0; i < g.kh; ++i) {
      const auto& v = t.v[i];
      const int64_t r[2] = {s.y0 + v.start[0] - t.r0,
                            s.y0 + v.start[1] - t.r0};
      const bool dot = rate && v.slope != T(0);
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t tap = ((c - s.c0) * g.kh + i) * g.kw + j;
        const bool u = adjoint(j);
        const bool h = dot || col != nullptr;
        acc += v.slope *
               tap_backward<T>(col == nullptr ? nullptr : col + tap * ld,
                               u ? ubuf[0].row(j, v.phase[0], r[0]) : nullptr,
                               u ? ubuf[1].row(j, v.phase[1], r[1]) : nullptr,
                               col_grad + tap * ld, v.weight[0], v.weight[1],
                               h ? hbuf.row(j, v.phase[0], r[0]) : nullptr,
                               h ? hbuf.row(j, v.phase[1], r[1]) : nullptr,
                               dot, len);
      }
    }
    if (any_adjoint) {
      const auto [lo, hi] = rows_inside(t, image.hq);
      const int64_t n = (hi - lo) * g.out_w;
      for (int64_t j = 0; j < g.kw; ++j) {
        if (!adjoint(j)) continue;
        const auto& h = t.h[j];
        for (int64_t p = 0; p < g.sh; ++p) {
          T* u = ubuf[0].row(j, p, lo - t.r0);
          add_run<T>(u, ubuf[1].row(j, p, lo - t.r0), n);
          // D is zero outside the planes' rows [lo, hi)
          if (rate && h.slope != T(0))
            acc += h.slope * dot_run<T>(u, dbuf.row(j, p, lo - t.r0), n);
          if (input)
            horizontal_adjoint_rows<T>(
                h, grad_image->plane(s.n, c, p, h.phase[0]) + lo * image.wq,
                grad_image->plane(s.n, c, p, h.phase[1]) + lo * image.wq, u,
                hi - lo, g.out_w, image.wq);
        }
      }
    }
    if (rate) grad_rate[s.n * g.channels + c] += acc;
  }
}

}  // namespace
