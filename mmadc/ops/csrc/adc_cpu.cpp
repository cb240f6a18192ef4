// Copyright (c) mmadc contributors. All rights reserved.
//
// Native CPU kernels of adaptive dilated convolution (ADC).
//
// Same semantics as the reference in mmadc/ops/reference.py
// (and tested against it): tap (i, j) of output (ho, wo) reads channel c at
//   (ho * sh + cy + ti * dh * r,  wo * sw + cx + tj * dw * r)
// by bilinear interpolation with zero outside the image, where
// ti = i - kh / 2, cy = -ph + dh * (kh / 2) (likewise along W) and r is the
// rate of c's dilation group for that sample. Integer and fractional parts
// use the floor convention of torchvision's deform_conv2d, except at a
// negative tap's kink (see axis_tap).
//
// Because a tap's shift is the same at every output position, its bilinear
// read is separable into contiguous, vectorisable row operations: per
// channel, a horizontal interpolation pass per tap column into row buffers
// as long as the output rows (the only loops that see the image's edges),
// then per tap one vertical interpolation pass, a single loop over a whole
// block of output rows. A strided convolution reads deinterleaved phase
// planes of the input (even and odd rows/columns for stride 2), so that its
// loops are unit-stride too.
//
// The tap columns are built per block of output rows, sized to stay in the
// cache, and consumed at once by a GEMM (as in an im2col convolution), so
// the 9x-sized tap image never goes through main memory. The backward
// recomputes the columns (nothing but the input, weight and rates is saved)
// and applies the adjoint of the sampling in the same walk as the rate
// gradient. Late stages (few pixels, many channels) split the backward by
// input channels instead of output rows.
//
// Reads outside the image are exact zeros; inside it, a zero interpolation
// weight times a non-finite input value gives NaN (0 * inf), as in the
// reference's interpolation.
#include <torch/extension.h>

#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>
#include <ATen/core/dispatch/Dispatcher.h>

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
// gradient v: the adjoint u0[x] += w0 v[x], u1[x] += w1 v[x] (u0 and u1 are
// separate buffers, the two neighbours' shares, so that nothing aliases),
// and the rate derivative, returned:
//   sum_x v[x] (sy (h1[x] - h0[x]) + sx0 d0[x] + sx1 d1[x])
// with sx_k = slope_w * w_k. Null u0 or h0: that part is not needed.
template <typename T>
ADC_HOT_LOOP double vertical_adjoint_run(
    T* __restrict u0, T* __restrict u1, const T* __restrict v, T w0, T w1,
    const T* __restrict h0, const T* __restrict h1, const T* __restrict d0,
    const T* __restrict d1, T sy, T sx0, T sx1, int64_t n) {
  T acc = 0;
  if (h0 == nullptr) {
#pragma omp simd
    for (int64_t x = 0; x < n; ++x) {
      u0[x] += w0 * v[x];
      u1[x] += w1 * v[x];
    }
  } else if (u0 == nullptr) {
#pragma omp simd reduction(+ : acc)
    for (int64_t x = 0; x < n; ++x)
      acc += v[x] * (sy * (h1[x] - h0[x]) + sx0 * d0[x] + sx1 * d1[x]);
  } else {
#pragma omp simd reduction(+ : acc)
    for (int64_t x = 0; x < n; ++x) {
      u0[x] += w0 * v[x];
      u1[x] += w1 * v[x];
      acc += v[x] * (sy * (h1[x] - h0[x]) + sx0 * d0[x] + sx1 * d1[x]);
    }
  }
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
// as in build_columns). Writes only the span's channels of sample n.
template <typename T>
void pull_back_columns(const Geometry& g, const PlaneRates& pr,
                       const Planes<const T*>& image, const T* col_grad,
                       int64_t ld, const Span& s, const Planes<T*>* grad_image,
                       double* grad_rate) {
  thread_local ChannelTaps<T> t;
  // ubuf[k]: the vertical adjoints' shares of neighbour k
  thread_local RowBuffers<T> hbuf, dbuf, ubuf[2];
  const int64_t len = (s.y1 - s.y0) * g.out_w;
  for (int64_t c = s.c0; c < s.c1; ++c) {
    channel_taps<T>(g, pr, image.hq, image.wq, s, c, &t);
    if (grad_rate != nullptr) {
      hbuf.reset(g.kw, g.sh, t.rows(), g.out_w);
      dbuf.reset(g.kw, g.sh, t.rows(), g.out_w);
      horizontal_pass<T>(g, image, s, c, t, hbuf, &dbuf);
    }
    if (grad_image != nullptr)
      for (auto& u : ubuf) {
        u.reset(g.kw, g.sh, t.rows(), g.out_w);
        std::fill(u.data.begin(), u.data.end(), T(0));
      }
    double acc = 0;
    for (int64_t i = 0; i < g.kh; ++i) {
      const auto& v = t.v[i];
      for (int64_t j = 0; j < g.kw; ++j) {
        const T* vg = col_grad + (((c - s.c0) * g.kh + i) * g.kw + j) * ld;
        const int64_t r[2] = {s.y0 + v.start[0] - t.r0,
                              s.y0 + v.start[1] - t.r0};
        // d(sample)/d(rate) = slope_h * dM/dy + slope_w * dM/dx
        const T sy = v.slope, sx = t.h[j].slope;
        const bool input = grad_image != nullptr;
        const bool rate = grad_rate != nullptr && (sy != T(0) || sx != T(0));
        if (!input && !rate) continue;
        auto at = [&](RowBuffers<T>& buf, int k) {
          return buf.row(j, v.phase[k], r[k]);
        };
        acc += vertical_adjoint_run<T>(
            input ? at(ubuf[0], 0) : nullptr, input ? at(ubuf[1], 1) : nullptr,
            vg, v.weight[0], v.weight[1], rate ? at(hbuf, 0) : nullptr,
            rate ? at(hbuf, 1) : nullptr, rate ? at(dbuf, 0) : nullptr,
            rate ? at(dbuf, 1) : nullptr, sy, sx * v.weight[0],
            sx * v.weight[1], len);
      }
    }
    if (grad_image != nullptr) {
      const auto [lo, hi] = rows_inside(t, grad_image->hq);
      const int64_t wq = grad_image->wq;
      for (int64_t j = 0; j < g.kw; ++j)
        for (int64_t p = 0; p < g.sh; ++p) {
          const auto& h = t.h[j];
          T* u = ubuf[0].row(j, p, lo - t.r0);
          add_run<T>(u, ubuf[1].row(j, p, lo - t.r0), (hi - lo) * g.out_w);
          horizontal_adjoint_rows<T>(
              h, grad_image->plane(s.n, c, p, h.phase[0]) + lo * wq,
              grad_image->plane(s.n, c, p, h.phase[1]) + lo * wq, u, hi - lo,
              g.out_w, wq);
        }
    }
    if (grad_rate != nullptr) grad_rate[s.n * g.channels + c] += acc;
  }
}

// a @ b^T for a (M, K) and b (N, K), each with unit stride along K or
// along the other dimension. float32 goes to oneDNN's matmul (through
// the mkldnn::_linear_pointwise operator PyTorch registers for its CPU
// inductor backend) where the CPU has AVX-512, else to at::mm (MKL): MKL
// runs its AVX2 code on AMD's AVX-512 CPUs, where oneDNN is faster, and
// at::mm is the faster one on AVX2-only CPUs (README, "Tests and
// benchmarks", has the measurements). Other dtypes, or a PyTorch without
// that operator, use at::mm.
const c10::OperatorHandle* onednn_linear() {
  static const c10::OperatorHandle* handle = []() {
    auto found = c10::Dispatcher::singleton().findSchema(
        {"mkldnn::_linear_pointwise", ""});
    return found.has_value() ? new c10::OperatorHandle(*found) : nullptr;
  }();
  return handle;
}

bool cpu_has_avx512() {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  // called from a static initialiser, which may run before libgcc's own
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f");
#else
  return false;
#endif
}

// switched by set_onednn (tests cover both paths)
bool use_onednn = cpu_has_avx512();

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

at::Tensor forward(const at::Tensor& input_, const at::Tensor& weight_,
                   const at::Tensor& rates,
                   const c10::optional<at::Tensor>& bias_,
                   at::IntArrayRef stride, at::IntArrayRef padding,
                   at::IntArrayRef dilation, int64_t block_bytes) {
  const Geometry g =
      make_geometry(input_, weight_, rates, stride, padding, dilation);
  const at::Tensor input = input_.detach().contiguous();
  at::Tensor out =
      at::empty({g.num, g.out_channels, g.out_h, g.out_w}, input.options());
  if (g.num == 0) return out;
  at::Tensor out2 = out.view({g.num, g.out_channels, g.pixels()});
  c10::optional<at::Tensor> bias;
  if (bias_.has_value() && bias_->defined())
    bias = bias_->detach().contiguous().view({g.out_channels, 1});
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "adc_cpu_forward", [&] {
    forward_row_blocks(
        make_problem<scalar_t>(g, input, weight_, rates, block_bytes), out2,
        bias);
  });
  return out;
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
      if (grads.weight) {
        channels([&](int64_t c0, int64_t c1) {
          for_each_segment(g, q0, q1, [&](Span s, int64_t offset) {
            s.c0 = c0;
            s.c1 = c1;
            build_columns<T>(g, pb.pr, pb.image, s,
                             col + c0 * taps * len + offset, len);
          });
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
        const auto grad_image = planes_of<T*>(grads.input, g);
        channels([&](int64_t c0, int64_t c1) {
          for_each_segment(g, q0, q1, [&](Span s, int64_t offset) {
            s.c0 = c0;
            s.c1 = c1;
            pull_back_columns<T>(
                g, pb.pr, pb.image, gc + c0 * taps * len + offset, len, s,
                grads.input == nullptr ? nullptr : &grad_image, grads.rho);
          });
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
          if (grads.weight) {
            for (int64_t n = 0; n < g.num; ++n)
              build_columns<T>(g, pb.pr, pb.image, span(n),
                               col + n * g.pixels(), pixels);
            grads.weight_grad.narrow(1, c0 * taps, rows)
                .copy_(gemm_nt(go, col_buf[slot]
                                       .narrow(0, 0, rows * pixels)
                                       .view({rows, pixels})));
          }
          if (grads.input != nullptr || grads.rho != nullptr) {
            const at::Tensor gcols =
                gemm_nt(wmat_t.narrow(0, c0 * taps, rows), go.t())
                    .contiguous();
            for (int64_t n = 0; n < g.num; ++n)
              pull_back_columns<T>(
                  g, pb.pr, pb.image, gcols.data_ptr<T>() + n * g.pixels(),
                  pixels, span(n),
                  grads.input == nullptr ? nullptr : &grad_image, grads.rho);
          }
        }
      });
}

// Returns {grad_input, grad_weight, grad_rates} (undefined when not needed).
std::vector<at::Tensor> backward(
    const at::Tensor& grad_out_, const at::Tensor& input_,
    const at::Tensor& weight_, const at::Tensor& rates, at::IntArrayRef stride,
    at::IntArrayRef padding, at::IntArrayRef dilation, bool need_input,
    bool need_weight, bool need_rates, int64_t block_bytes) {
  const Geometry g =
      make_geometry(input_, weight_, rates, stride, padding, dilation);
  const at::Tensor input = input_.detach().contiguous();
  const at::Tensor grad_out = grad_out_.detach().contiguous().view(
      {g.num, g.out_channels, g.pixels()});
  const auto opts = input.options();
  at::Tensor grad_input, grad_weight, grad_rates, grad_rho;
  if (need_input) {
    grad_input = at::zeros({g.num, g.channels, g.sh, g.sw,
                            ceil_div(g.height, g.sh), ceil_div(g.width, g.sw)},
                           opts);
  }
  if (need_rates)
    grad_rho = at::zeros({g.num, g.channels}, opts.dtype(at::kDouble));
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "adc_cpu_backward", [&] {
    const auto pb =
        make_problem<scalar_t>(g, input, weight_, rates, block_bytes);
    Gradients<scalar_t> grads{
        need_input ? grad_input.data_ptr<scalar_t>() : nullptr,
        need_rates ? grad_rho.data_ptr<double>() : nullptr, need_weight,
        at::Tensor()};
    const int64_t chunk = channels_per_chunk(g, sizeof(scalar_t), block_bytes);
    if (chunk > 0)
      backward_channel_chunks(pb, grad_out, chunk, grads);
    else
      backward_row_blocks(pb, grad_out, grads);
    grad_weight = grads.weight_grad;
  });
  if (need_input) grad_input = from_phase_planes(grad_input, g);
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

// Which backward schedule a call takes: "channels" or "rows" (for tests).
std::string backward_schedule(const at::Tensor& input,
                              const at::Tensor& weight,
                              const at::Tensor& rates, at::IntArrayRef stride,
                              at::IntArrayRef padding,
                              at::IntArrayRef dilation, int64_t block_bytes) {
  const Geometry g =
      make_geometry(input, weight, rates, stride, padding, dilation);
  return channels_per_chunk(g, input.element_size(), block_bytes) > 0
             ? "channels"
             : "rows";
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "Native CPU kernels of adaptive dilated convolution (mmadc).";
  m.def(
      "set_onednn", [](bool on) { use_onednn = on; },
      "Use oneDNN for float32 GEMMs when available (default: where the "
      "CPU has AVX-512)");
  m.def(
      "has_onednn", []() { return onednn_linear() != nullptr; },
      "Whether PyTorch provides the oneDNN matmul operator");
  m.def("uses_onednn", &uses_onednn,
        "Whether float32 GEMMs go to oneDNN (else at::mm)");
  m.def("forward", &forward, "ADC forward (CPU, float32/float64)",
        py::arg("input"), py::arg("weight"), py::arg("rates"), py::arg("bias"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("block_bytes"));
  m.def("backward", &backward, "ADC input/weight/rate gradients (CPU)",
        py::arg("grad_out"), py::arg("input"), py::arg("weight"),
        py::arg("rates"), py::arg("stride"), py::arg("padding"),
        py::arg("dilation"), py::arg("need_input"), py::arg("need_weight"),
        py::arg("need_rates"), py::arg("block_bytes"));
  m.def("backward_schedule", &backward_schedule,
        "Which backward schedule a call takes: 'channels' or 'rows'",
        py::arg("input"), py::arg("weight"), py::arg("rates"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("block_bytes"));
}
