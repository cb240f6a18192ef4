// Copyright (c) mmadc contributors. All rights reserved.
//
// The rate regressor of an ADC layer (DilationRateRegressor in
// mmadc/ops/adc_layer.py): global average pooling, fc1, ReLU, fc2, the rate
// activation and the optional clamp, for layer_forward (adc_cpu.cpp, which
// includes this header into its one translation unit), the layer's eager
// inference in one call (AdaptiveDilatedConv2d._native_inference_allowed
// says why). Plain loops: fc1, the larger layer, has C_in^2 / 4
// multiply-adds per sample, little next to the convolution.
#pragma once

#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <cmath>
#include <string>
#include <vector>

namespace {

enum class RateActivation { kRelu, kSoftplus, kElu };

RateActivation rate_activation(const std::string& name) {
  if (name == "relu") return RateActivation::kRelu;
  if (name == "softplus") return RateActivation::kSoftplus;
  TORCH_CHECK(name == "elu", "adc_cpu: unknown rate activation ", name);
  return RateActivation::kElu;
}

// The activations of RATE_ACTIVATIONS (adc_layer.py): each maps 1 to 1 and
// lets NaN through, as the PyTorch ops do.
template <typename T>
T activate(T z, RateActivation act) {
  switch (act) {
    case RateActivation::kRelu:
      return z < T(0) ? T(0) : z;
    case RateActivation::kSoftplus: {
      // F.softplus(z - 1 + log(e - 1)), threshold 20 as F.softplus's
      const T a = z - T(1) + static_cast<T>(std::log(M_E - 1.0));
      return a > T(20) ? a : std::log1p(std::exp(a));
    }
    case RateActivation::kElu: {
      const T a = z - T(1);  // F.elu(z - 1) + 1
      return (a > T(0) ? a : std::expm1(a)) + T(1);
    }
  }
  return z;
}

// pooled[i] = the mean of plane i of x (planes of `pixels` elements),
// summed in float64.
template <typename T>
void pool_planes(const T* x, T* pooled, int64_t planes, int64_t pixels) {
  const int64_t grain =
      std::max<int64_t>(1, 65536 / std::max<int64_t>(1, pixels));
  at::parallel_for(0, planes, grain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const T* p = x + i * pixels;
      double sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t k = 0; k < pixels; ++k) sum += p[k];
      pooled[i] = static_cast<T>(sum / static_cast<double>(pixels));
    }
  });
}

// out[n * rows + r] = b[r] + sum_k w[r * k_len + k] in[n * k_len + k],
// then relu'd (fc1) or not (fc2).
template <typename T>
void linear_rows(const T* in, const T* w, const T* b, T* out, int64_t num,
                 int64_t rows, int64_t k_len, bool relu) {
  // small layers (every regressor at small batches) run inline
  const int64_t grain =
      std::max<int64_t>(1, 32768 / std::max<int64_t>(1, k_len));
  at::parallel_for(0, num * rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const T* x = in + (i / rows) * k_len;
      const T* wr = w + (i % rows) * k_len;
      T acc = 0;
#pragma omp simd reduction(+ : acc)
      for (int64_t k = 0; k < k_len; ++k) acc += wr[k] * x[k];
      const T z = acc + b[i % rows];
      out[i] = relu && z < T(0) ? T(0) : z;
    }
  });
}

// Rates (N, g) of input (N, C, H, W); fc1: (hidden, C) weight and (hidden)
// bias, fc2: (g, hidden) and (g); all of one dtype (layer_forward_applies
// has checked them).
at::Tensor regress_rates(const at::Tensor& input_, const at::Tensor& w1_,
                         const at::Tensor& b1_, const at::Tensor& w2_,
                         const at::Tensor& b2_, const std::string& activation,
                         c10::optional<double> max_rate) {
  const RateActivation act = rate_activation(activation);
  // only read through data pointers: no copies where already contiguous
  const auto input = input_.expect_contiguous();
  const auto w1 = w1_.expect_contiguous(), b1 = b1_.expect_contiguous();
  const auto w2 = w2_.expect_contiguous(), b2 = b2_.expect_contiguous();
  const int64_t num = input->size(0), channels = input->size(1);
  const int64_t pixels = input->size(2) * input->size(3);
  const int64_t hidden = w1->size(0), groups = w2->size(0);
  at::Tensor rates = at::empty({num, groups}, input->options());
  AT_DISPATCH_FLOATING_TYPES(input->scalar_type(), "adc_regress_rates", [&] {
    std::vector<scalar_t> pooled(num * channels), hid(num * hidden);
    pool_planes<scalar_t>(input->data_ptr<scalar_t>(), pooled.data(),
                          num * channels, pixels);
    linear_rows<scalar_t>(pooled.data(), w1->data_ptr<scalar_t>(),
                          b1->data_ptr<scalar_t>(), hid.data(), num, hidden,
                          channels, true);
    scalar_t* r = rates.data_ptr<scalar_t>();
    linear_rows<scalar_t>(hid.data(), w2->data_ptr<scalar_t>(),
                          b2->data_ptr<scalar_t>(), r, num, groups, hidden,
                          false);
    for (int64_t i = 0; i < num * groups; ++i) {
      r[i] = activate(r[i], act);
      // clamp(max=...) lets NaN through
      if (max_rate.has_value() && r[i] > static_cast<scalar_t>(*max_rate))
        r[i] = static_cast<scalar_t>(*max_rate);
    }
  });
  return rates;
}

}  // namespace
