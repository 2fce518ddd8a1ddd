"""The interpreter: builds one operator object per graph operator (TFLM's Init + Prepare), checks
that they fit together on a zero input, then runs whole batches; a graph that is a chain of FC layers
(plus reshapes) runs fused: activations stay float32 between layers and rows are processed in
cache-sized blocks, optionally on several threads."""
from __future__ import annotations

import contextlib
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from basics.errors import UserError
from tflm_port.reference.average_pool2d import AveragePool2D
from tflm_port.reference.common import MAX_WORK, TT, np_type, per_sample_shape
from tflm_port.reference.conv2d import Conv2D
from tflm_port.reference.depthwise_conv2d import DepthwiseConv2D
from tflm_port.reference.fixedpoint import check_rounding, quantize_f32
from tflm_port.reference.fully_connected import FullyConnected, build_fully_connected, build_sub8_fully_connected
from tflm_port.reference.quantize import Dequantize, Quantize
from tflm_port.reference.registry import extension_builder
from tflm_port.reference.reshape import Reshape, ShapeArith
from tflm_port.reference.softmax import Softmax
from tflm_port.tflite_io import CUSTOM_CODE, load_model, op_name, quant_params, read_bytes, tensor_name

BLOCK_ROWS = 2048  # generic (multi-op) path
FUSED_ROWS = 512  # fused FC chain: rows per block (tuned on the 2-core dev machine)
QUANT_ROWS = 128  # float -> int8 quantization sub-block (its temporaries stay in L2)


_BLAS_CTL = []


def _blas_threads(n: int):
    """Context manager limiting BLAS threads (threadpoolctl when installed; it comes with
    scikit-learn, a dependency of audiomentations), else a no-op. Setting OPENBLAS_NUM_THREADS after
    numpy was imported has no effect, so the limit is applied here at call time."""
    if not _BLAS_CTL:
        try:
            from threadpoolctl import ThreadpoolController  # lazy, optional: imported once, on first use

            _BLAS_CTL.append(ThreadpoolController())
        except Exception:  # pragma: no cover - optional
            _BLAS_CTL.append(None)
    ctl = _BLAS_CTL[0]
    if ctl is None:
        return contextlib.nullcontext()
    return ctl.limit(limits=n, user_api="blas")


class Reference:
    """Vectorized integer reference for one-subgraph, batch-1 .tflite models."""

    def __init__(self, model, name: str = "<model>", rounding: str = "tflm"):
        """``rounding``: "tflm" (default; TFLite Micro kernels and the firmware contract) or "tflite"
        (tf.lite / LiteRT builtin CPU kernels without XNNPACK: FC multiplier from the float32 product
        s_in * s_w, final shift ties toward +infinity). See the module docstring."""
        check_rounding(rounding)
        self.rounding = rounding
        self.name = name
        self.model = model
        sg = model.subgraphs[0]
        self.tensors = sg.tensors
        if len(sg.inputs) != 1 or len(sg.outputs) != 1:
            raise UserError(f"{name}: reference supports one input and one output (got {len(sg.inputs)}, {len(sg.outputs)})")
        self.input_index, self.output_index = int(sg.inputs[0]), int(sg.outputs[0])
        it, ot = self.tensors[self.input_index], self.tensors[self.output_index]
        for t in (it, ot):
            if t.shape is None or len(t.shape) == 0 or int(t.shape[0]) != 1:
                raise UserError(f"{name}: tensor {tensor_name(t)} must have batch dimension 1")
        self.input_shape = per_sample_shape(it)
        self.output_shape = per_sample_shape(ot)
        self.input_dtype = np_type(it)
        self.output_dtype = np_type(ot)
        s, zp, _ = quant_params(it)
        self.input_quant = (float(s[0]), int(zp[0])) if len(s) else (0.0, 0)
        s, zp, _ = quant_params(ot)
        self.output_quant = (float(s[0]), int(zp[0])) if len(s) else (0.0, 0)
        self.ops = [self._build(op, k) for k, op in enumerate(sg.operators or [])]
        self.fc_chain = self._fc_chain()
        self.ends_in_softmax = bool(self.ops) and isinstance(self.ops[-1], Softmax)
        self._prepare()

    def _prepare(self) -> None:
        """Run one zero input through the graph once (TFLM's Prepare): a model whose operators do not
        fit together (shapes that disagree, a tensor read before it is written) fails here with one
        UserError, before any tool uses it or writes anything."""
        produced = {self.input_index}
        produced.update(i for i, t in enumerate(self.tensors) if self.model.buffers[t.buffer].data is not None
                        and len(self.model.buffers[t.buffer].data))
        for k, op in enumerate(self.ops):
            for i in op.inputs[:1]:
                if i not in produced:
                    raise UserError(f"{self.name}: operator {k} reads tensor {i} before any operator writes it")
            produced.update(op.outputs)
        if self.output_index not in produced:
            raise UserError(f"{self.name}: no operator writes the output tensor {self.output_index}")
        if int(np.prod(self.input_shape)) > MAX_WORK or int(np.prod(self.output_shape)) > MAX_WORK:
            raise UserError(f"{self.name}: input/output shapes {self.input_shape} / {self.output_shape} above "
                            f"the reference's limit of {MAX_WORK} elements per sample")
        try:
            y = self.run(np.zeros((1,) + self.input_shape, self.input_dtype))
        except UserError as e:
            raise UserError(f"{self.name}: {e}") from None
        except (ValueError, IndexError, TypeError, KeyError, ZeroDivisionError, OverflowError, AttributeError) as e:
            raise UserError(f"{self.name}: operators do not fit together ({type(e).__name__}: "
                            f"{str(e).splitlines()[0][:120] if str(e) else ''})") from None
        if y.shape[1:] != self.output_shape:
            raise UserError(f"{self.name}: the graph computes an output of shape {y.shape[1:]}, the output tensor "
                            f"says {self.output_shape}")
        self.reset_state()

    def reset_state(self) -> None:
        """Stateful operators (LSTM) start their streams again: rows of the next run() are new streams."""
        for op in self.ops:
            if hasattr(op, "reset"):
                op.reset()

    def _build_sub8(self, op, ins, outs, where):
        """A SUB8_FULLY_CONNECTED operator object (tflm_port.fc_a4 builds SUB8_FC_A4 on it)."""
        return build_sub8_fully_connected(self.model, self.tensors, op, ins, outs, where, self.rounding)

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "<bytes>", rounding: str = "tflm") -> "Reference":
        return cls(load_model(data, name), name, rounding)

    @classmethod
    def from_file(cls, path: str | Path, rounding: str = "tflm") -> "Reference":
        return cls.from_bytes(read_bytes(path), str(path), rounding)

    # -- building
    def _build(self, op, k):
        model, T = self.model, self.tensors
        name = op_name(model, op)
        self._k = k
        ins = [int(i) for i in op.inputs]
        outs = [int(i) for i in op.outputs]
        where = f"{self.name}: operator {k} ({name})"
        try:
            self._check_arity(name, ins, outs, where)
            if name == "FULLY_CONNECTED":
                return build_fully_connected(model, T, op, ins, outs, where, self.rounding)
            if name == CUSTOM_CODE:
                return build_sub8_fully_connected(model, T, op, ins, outs, where, self.rounding)
            if name in ("SHAPE", "STRIDED_SLICE", "PACK") and all(T[o].type == TT.INT32 for o in outs):
                return ShapeArith(ins, outs)  # batch-size arithmetic feeding RESHAPE's shape input
            if name in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS"):
                return Reshape(ins[:1], outs, per_sample_shape(T[outs[0]]))
            if name == "QUANTIZE":
                return Quantize(T[ins[0]], T[outs[0]], ins, outs, self.rounding)
            if name == "DEQUANTIZE":
                return Dequantize(T[ins[0]], ins, outs)
            if name == "SOFTMAX":
                return Softmax(op, T)
            if name == "CONV_2D":
                return Conv2D(model, op, T, self.rounding)
            if name == "DEPTHWISE_CONV_2D":
                return DepthwiseConv2D(model, op, T, self.rounding)
            if name == "AVERAGE_POOL_2D":
                return AveragePool2D(op, T)
            build = extension_builder(name)  # LSTM, SUB8_FC_A4 (tflm_port/reference/registry.py)
            if build is not None:
                return build(self, op, ins, outs, where)
        except UserError as e:
            raise UserError(f"{where}: {e}") from None
        except (ValueError, IndexError, TypeError, KeyError, ZeroDivisionError, OverflowError, AttributeError) as e:
            # load_model checked the file's structure; what is left is an operator whose tensors or
            # options do not make sense together (e.g. weights of the wrong rank): one line, no traceback
            raise UserError(f"{where}: malformed operator ({type(e).__name__}: "
                            f"{str(e).splitlines()[0][:120] if str(e) else ''})") from None
        raise UserError(f"{where}: operator not supported by the reference")

    # operator -> (minimum inputs, builtin options class name or None, options required)
    _ARITY = {"FULLY_CONNECTED": (2, "FullyConnectedOptionsT", False), CUSTOM_CODE: (2, None, False),
              "RESHAPE": (1, None, False), "SQUEEZE": (1, None, False), "EXPAND_DIMS": (1, None, False),
              "QUANTIZE": (1, None, False), "DEQUANTIZE": (1, None, False),
              "SOFTMAX": (1, "SoftmaxOptionsT", True), "CONV_2D": (2, "Conv2DOptionsT", True),
              "DEPTHWISE_CONV_2D": (2, "DepthwiseConv2DOptionsT", True),
              "AVERAGE_POOL_2D": (1, "Pool2DOptionsT", True)}

    def _check_arity(self, name, ins, outs, where):
        if name not in self._ARITY:
            return
        n_in, opt_cls, required = self._ARITY[name]
        if len(ins) < n_in or any(i < 0 for i in ins[:n_in]) or len(outs) != 1:
            raise UserError(f"{where}: needs {n_in}+ inputs and one output, has {len(ins)} inputs "
                            f"{ins[:8]} and {len(outs)} outputs")
        op = self.model.subgraphs[0].operators[self._k]
        opt = op.builtinOptions
        if opt is None and required:
            raise UserError(f"{where}: builtin options missing")
        if opt is not None and opt_cls is not None and type(opt).__name__ != opt_cls:
            raise UserError(f"{where}: builtin options are {type(opt).__name__[:-1]}, expected {opt_cls[:-1]}")
        for attr in ("strideH", "strideW", "filterHeight", "filterWidth", "dilationHFactor", "dilationWFactor"):
            v = getattr(opt, attr, 1)
            if not 1 <= v <= 4096:
                raise UserError(f"{where}: {attr} = {v} (must be 1..4096)")
        if name == "SOFTMAX" and not (math.isfinite(opt.beta) and opt.beta > 0):
            raise UserError(f"{where}: softmax beta {opt.beta} is not finite and positive")

    def _fc_chain(self):
        """The FC operators in order if the graph is input -> FC -> ... -> FC -> output with only
        reshapes / shape arithmetic between them (the fused fast path), else None."""
        alias = {}
        fcs = []
        for op in self.ops:
            if isinstance(op, FullyConnected):
                fcs.append(op)
            elif isinstance(op, Reshape):
                alias[op.outputs[0]] = op.inputs[0]
            elif not isinstance(op, ShapeArith):
                return None

        def src(t):
            while t in alias:
                t = alias[t]
            return t

        if not fcs or self.input_dtype != np.int8 or src(fcs[0].inputs[0]) != self.input_index:
            return None
        for a, b in zip(fcs, fcs[1:]):
            if src(b.inputs[0]) != a.outputs[0]:
                return None
        if src(self.output_index) != fcs[-1].outputs[0]:
            return None
        return fcs

    # -- running
    def run(self, inputs: np.ndarray, threads: int = 1) -> np.ndarray:
        """inputs [N, *input_shape] (int8, or float32 if the model input is float) -> outputs [N, *output_shape].

        ``threads`` > 1 splits the rows of an FC-chain model over a thread pool (numpy releases the
        GIL); results do not depend on it."""
        x = self._check_input(inputs)
        if self.fc_chain is not None:
            return self._run_fused(x, threads)
        outs = []
        rows = max(len(x), 1) if any(hasattr(op, "reset") for op in self.ops) else BLOCK_ROWS  # state per row
        for s in range(0, max(len(x), 1), rows):
            blk = x[s:s + rows]
            env = {self.input_index: blk}
            for op in self.ops:
                op(env, len(blk))
            outs.append(env[self.output_index])
        return np.concatenate(outs, axis=0) if outs else np.zeros((0,) + self.output_shape, self.output_dtype)

    def _run_fused(self, x: np.ndarray, threads: int = 1) -> np.ndarray:
        with _blas_threads(1):  # small GEMMs: OpenBLAS threads only spin (10-30x slower on 2 busy cores)
            return self._run_fused_rows(x, threads)

    def posteriors_from_frames(self, frames: np.ndarray, context: int, stride: int = 1, threads: int = 1) -> np.ndarray:
        """Normalized feature frames [T, B] -> posteriors of every context window, [T - span + 1,
        classes], span = (context - 1) * stride + 1; windows as ``training.features.stack_context``
        builds them (window i = frames i, i + stride, ..., frame-major). Equals
        ``posteriors(stack_context(frames, context, stride))`` but quantizes each frame once instead of
        ``context`` times and never materializes the windows (streaming evaluation)."""
        f = np.asarray(frames, np.float32)
        if f.ndim != 2 or f.shape[1] * context != int(np.prod(self.input_shape)):
            raise UserError(f"frames {f.shape} x context {context} do not match model input {self.input_shape}")
        span = (context - 1) * stride + 1
        n = max(len(f) - span + 1, 0)
        if n == 0:
            return np.zeros((0, int(np.prod(self.output_shape))), np.float64)
        if self.fc_chain is None:
            win = np.lib.stride_tricks.sliding_window_view(f, (span, f.shape[1]))[:, 0, ::stride]
            return self.posteriors(win.reshape(n, -1), threads)
        s, zp = self.input_quant
        qf = np.empty_like(f)
        for a in range(0, len(f), QUANT_ROWS * 8):
            quantize_f32(f[a:a + QUANT_ROWS * 8], s, zp, out=qf[a:a + QUANT_ROWS * 8])
        win = np.lib.stride_tricks.sliding_window_view(qf, (span, f.shape[1]))[:, 0, ::stride]  # [n, ctx, B] view
        local = threading.local()

        def prep(blk):  # blk: rows of the window view -> contiguous float32 block
            buf = getattr(local, "buf", None)
            if buf is None:
                buf = local.buf = np.empty((FUSED_ROWS, context * f.shape[1]), np.float32)
            h = buf[:len(blk)]
            h.reshape(len(blk), context, f.shape[1])[...] = blk
            return h

        with _blas_threads(1):
            y = self._run_fused_rows(win, threads, prep, flatten=False)
        return self._to_posteriors(y)

    def _fused_posteriors(self, xf: np.ndarray, threads: int = 1) -> np.ndarray:
        s, zp = self.input_quant
        xf = np.asarray(xf, np.float32)
        local = threading.local()

        def prep(blk):
            buf = getattr(local, "buf", None)
            if buf is None or buf.shape[1] != blk.shape[1]:
                buf = local.buf = np.empty((FUSED_ROWS, blk.shape[1]), np.float32)
            h = buf[:len(blk)]
            for a in range(0, len(blk), QUANT_ROWS):
                quantize_f32(blk[a:a + QUANT_ROWS], s, zp, out=h[a:a + QUANT_ROWS])
            return h

        with _blas_threads(1):
            return self._run_fused_rows(xf, threads, prep)

    def _run_fused_rows(self, x: np.ndarray, threads: int = 1, prep=None, flatten: bool = True) -> np.ndarray:
        n = len(x)
        x2 = x.reshape(n, -1) if flatten else x
        out = np.empty((n, self.fc_chain[-1].out_features), np.int8)

        def block(s):
            blk = x2[s:s + FUSED_ROWS]
            h = prep(blk) if prep is not None else blk.astype(np.float32)
            for fc in self.fc_chain:
                h = fc.forward(h)
            out[s:s + FUSED_ROWS] = h  # float32 holding int8 values: exact cast

        starts = range(0, n, FUSED_ROWS)
        if threads > 1 and n > FUSED_ROWS:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(block, starts))
        else:
            for s in starts:
                block(s)
        return out.reshape((n,) + self.output_shape)

    def _check_input(self, inputs: np.ndarray) -> np.ndarray:
        """inputs [N, *input_shape] (int8, or float32 if the model input is float) -> outputs [N, *output_shape]."""
        x = np.asarray(inputs)
        if x.shape[1:] != self.input_shape:
            if x.ndim >= 1 and x.size % max(int(np.prod(self.input_shape)), 1) == 0 and x.ndim == 2:
                x = x.reshape((x.shape[0],) + self.input_shape)
            else:
                raise UserError(f"input shape {x.shape} does not match model input [N, {', '.join(map(str, self.input_shape))}]")
        if x.dtype != self.input_dtype:
            if self.input_dtype == np.int8 and (x.min(initial=0) < -128 or x.max(initial=0) > 127):
                raise UserError("int8 input out of range")
            x = x.astype(self.input_dtype)
        return x

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """float -> int8 with the model's input scale / zero point: round(x / s) half away from zero
        (x / s in float32, rounded exactly; C ``roundf``), + zp, clamped to [-128, 127]."""
        s, zp = self.input_quant
        x = np.asarray(x, np.float32)
        if x.ndim < 2:
            return quantize_f32(x, s, zp).astype(np.int8)
        out = np.empty(x.shape, np.int8)
        for a in range(0, len(x), QUANT_ROWS):  # row blocks: temporaries stay in cache
            out[a:a + QUANT_ROWS] = quantize_f32(x[a:a + QUANT_ROWS], s, zp)
        return out

    def dequantize_output(self, y: np.ndarray) -> np.ndarray:
        s, zp = self.output_quant
        return (np.asarray(y).astype(np.int32) - zp).astype(np.float32) * np.float32(s)

    def posteriors(self, float_windows: np.ndarray, threads: int = 1) -> np.ndarray:
        """Float model inputs [N, *input_shape] (already normalized features) -> class posteriors
        [N, classes] in float64: quantize with the input scale/zero point, run the integer model,
        dequantize, softmax in float64. A model whose last operator is SOFTMAX already outputs
        probabilities: those are returned dequantized (as float64), without a second softmax."""
        x = np.asarray(float_windows)
        n = len(x)
        if n == 0:
            return np.zeros((0, int(np.prod(self.output_shape))), np.float64)
        if self.fc_chain is not None and x.size == n * self.fc_chain[0].in_features:
            y = self._fused_posteriors(x.reshape(n, -1), threads)  # quantize inside the cache-sized blocks
        else:
            q = self.quantize_input(x) if self.input_dtype == np.int8 else x.astype(self.input_dtype)
            y = self.run(q.reshape((n,) + self.input_shape), threads=threads).reshape(n, -1)
        return self._to_posteriors(y)

    def _to_posteriors(self, y: np.ndarray) -> np.ndarray:
        if self.output_dtype == np.int8:
            s, zp = self.output_quant
            z = (y.astype(np.float64) - zp) * float(np.float32(s))
        else:
            z = y.astype(np.float64)
        if self.ends_in_softmax:
            return z
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z

