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
// the 9x-sized tap image never goes through main memory (late stages at
// small batches build all their columns by channels, for one GEMM that
// reads the weight once). The backward recomputes the columns (nothing but
// the input, weight and rates is saved) in the same walk that applies the
// adjoint of the sampling and takes the rate gradient, so each channel's
// horizontal pass is made once. Late stages (few pixels, many channels)
// split the backward by input channels instead of output rows.
//
// Reads outside the image are exact zeros; inside it, a zero interpolation
// weight times a non-finite input value gives NaN (0 * inf), as in the
// reference's interpolation.
//
// The code: adc_sampling.h has the sampling (taps, the separable passes
// and their adjoints), adc_schedule.h the GEMM scheduling (GEMM library,
// row blocks, channel chunks), adc_rate_regressor.h the layer's rate
// regressor for eager inference, this file the ops and their Python
// bindings. They are one translation unit, so that the hot loops inline
// and multiversion as one file would.
#include <torch/extension.h>

#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "adc_rate_regressor.h"
#include "adc_sampling.h"
#include "adc_schedule.h"

namespace {

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
    const auto pb =
        make_problem<scalar_t>(g, input, weight_, rates, block_bytes);
    if (forward_whole_call(g, sizeof(scalar_t), block_bytes))
      forward_whole(pb, out2, bias);
    else
      forward_row_blocks(pb, out2, bias);
  });
  return out;
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

// Whether layer_forward computes a call on {input, weight, bias (undefined
// if none), fc1 weight, fc1 bias, fc2 weight, fc2 bias}: CPU tensors of
// one floating dtype, no gradient needed, a contiguous input, consistent
// shapes, valid strides, paddings and dilations, and a non-empty output (else
// the layer takes the op, which raises where it must).
bool layer_forward_applies(const std::vector<at::Tensor>& tensors,
                           at::IntArrayRef stride, at::IntArrayRef padding,
                           at::IntArrayRef dilation) {
  const at::Tensor& input = tensors[0];
  const at::Tensor& weight = tensors[1];
  const auto dtype = input.scalar_type();
  if (dtype != at::kFloat && dtype != at::kDouble) return false;
  const bool grad = at::GradMode::is_enabled();
  for (const auto& t : tensors) {
    if (!t.defined()) continue;  // no bias
    if (!t.device().is_cpu() || t.scalar_type() != dtype ||
        t.layout() != at::kStrided || (grad && t.requires_grad()))
      return false;
  }
  if (input.dim() != 4 || !input.is_contiguous() || weight.dim() != 4 ||
      weight.size(1) != input.size(1) || stride.size() != 2 ||
      padding.size() != 2 || dilation.size() != 2)
    return false;
  // the regressor: fc1 (hidden, C_in), fc2 (g, hidden), g dividing C_in
  const at::Tensor &bias = tensors[2], &w1 = tensors[3], &b1 = tensors[4];
  const at::Tensor &w2 = tensors[5], &b2 = tensors[6];
  if ((bias.defined() && bias.numel() != weight.size(0)) || w1.dim() != 2 ||
      w2.dim() != 2 || w1.size(1) != input.size(1) ||
      b1.numel() != w1.size(0) || w2.size(1) != w1.size(0) ||
      b2.numel() != w2.size(0) || w2.size(0) < 1 ||
      input.size(1) % w2.size(0) != 0)
    return false;
  for (int axis = 0; axis < 2; ++axis) {
    if (stride[axis] < 1 || padding[axis] < 0 || dilation[axis] < 1)
      return false;
    const int64_t extent = input.size(2 + axis) + 2 * padding[axis] -
                           dilation[axis] * (weight.size(2 + axis) - 1);
    if (extent < 1 || weight.size(2 + axis) % 2 == 0) return false;
  }
  return true;
}

// Eager inference of an ADC layer (AdaptiveDilatedConv2d) in one call,
// where layer_forward_applies: the rates (regress_rates) and, where every
// rate is finite and within rate_bound (the op's clamp bound, from
// Python), the output. Else no rates (the call is not one it computes) or
// no output (the op must clamp the rates, or poison NaN ones).
std::tuple<c10::optional<at::Tensor>, c10::optional<at::Tensor>> layer_forward(
    const at::Tensor& input, const at::Tensor& weight,
    const c10::optional<at::Tensor>& bias, const at::Tensor& fc1_weight,
    const at::Tensor& fc1_bias, const at::Tensor& fc2_weight,
    const at::Tensor& fc2_bias, const std::string& activation,
    c10::optional<double> max_rate, double rate_bound, at::IntArrayRef stride,
    at::IntArrayRef padding, at::IntArrayRef dilation, int64_t block_bytes) {
  if (!layer_forward_applies({input, weight, bias.value_or(at::Tensor()),
                              fc1_weight, fc1_bias, fc2_weight, fc2_bias},
                             stride, padding, dilation))
    return {c10::nullopt, c10::nullopt};
  const at::Tensor rates = regress_rates(
      input, fc1_weight, fc1_bias, fc2_weight, fc2_bias, activation, max_rate);
  bool within = true;
  AT_DISPATCH_FLOATING_TYPES(rates.scalar_type(), "adc_rate_bound", [&] {
    const scalar_t* r = rates.data_ptr<scalar_t>();
    for (int64_t i = 0; i < rates.numel(); ++i)
      within = within && std::abs(r[i]) <= rate_bound;  // false for NaN
  });
  if (!within) return {rates, c10::nullopt};
  return {rates, forward(input, weight, rates, bias, stride, padding, dilation,
                         block_bytes)};
}

// Which forward schedule a call takes: "whole" or "rows" (for tests).
std::string forward_schedule(const at::Tensor& input, const at::Tensor& weight,
                             const at::Tensor& rates, at::IntArrayRef stride,
                             at::IntArrayRef padding, at::IntArrayRef dilation,
                             int64_t block_bytes) {
  const Geometry g =
      make_geometry(input, weight, rates, stride, padding, dilation);
  return forward_whole_call(g, input.element_size(), block_bytes) ? "whole"
                                                                  : "rows";
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
      "CPU has AVX-512 and is not Intel's)");
  m.def(
      "has_onednn", []() { return onednn_linear() != nullptr; },
      "Whether PyTorch provides the oneDNN matmul operator");
  m.def("uses_onednn", &uses_onednn,
        "Whether float32 GEMMs go to oneDNN (else at::mm)");
  m.def("gemm_nt", &gemm_nt,
        "a @ b^T with the kernels' GEMM library (a: (M, K), b: (N, K), "
        "each with unit stride along one dimension)",
        py::arg("a"), py::arg("b"));
  m.def("forward", &forward, "ADC forward (CPU, float32/float64)",
        py::arg("input"), py::arg("weight"), py::arg("rates"), py::arg("bias"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("block_bytes"));
  m.def("backward", &backward, "ADC input/weight/rate gradients (CPU)",
        py::arg("grad_out"), py::arg("input"), py::arg("weight"),
        py::arg("rates"), py::arg("stride"), py::arg("padding"),
        py::arg("dilation"), py::arg("need_input"), py::arg("need_weight"),
        py::arg("need_rates"), py::arg("block_bytes"));
  m.def("layer_forward", &layer_forward,
        "An ADC layer's rates and, where they are within rate_bound, its "
        "output (CPU, float32/float64, inference; None where it does not "
        "apply)",
        py::arg("input"), py::arg("weight"), py::arg("bias"),
        py::arg("fc1_weight"), py::arg("fc1_bias"), py::arg("fc2_weight"),
        py::arg("fc2_bias"), py::arg("activation"), py::arg("max_rate"),
        py::arg("rate_bound"), py::arg("stride"), py::arg("padding"),
        py::arg("dilation"), py::arg("block_bytes"));
  m.def("forward_schedule", &forward_schedule,
        "Which forward schedule a call takes: 'whole' or 'rows'",
        py::arg("input"), py::arg("weight"), py::arg("rates"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("block_bytes"));
  m.def("backward_schedule", &backward_schedule,
        "Which backward schedule a call takes: 'channels' or 'rows'",
        py::arg("input"), py::arg("weight"), py::arg("rates"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("block_bytes"));
}
