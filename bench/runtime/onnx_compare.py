#!/usr/bin/env python3
"""tiny-YOLO: edgefd-pipeline against onnxruntime (CPU execution provider), same network.

The same YoloTinyNet (DESIGN.md, "Runtime contract": nine 3x3 convolutions with leaky ReLU 0.1,
2x2 max-pools after the first six, FC 50176->256->4096->1470) is built with the onnx helper API
from the same weights file edgefd-pipeline reads (--weights: float32 weights then biases per
layer; convolutions O,KH,KW,I over HWC activations, FC rows over the HWC-flattened input), and
both run the source's frames (edgefd's SplitMix64 images, rebuilt here) with the same number of
threads. Runs are interleaved (edgefd, onnxruntime, edgefd, ...) so that load on a shared
machine hits both alike; the medians and their ratio are printed, per thread count.

The outputs are checked first: the sum of every output of a run (edgefd's checksum) must match
onnxruntime's on the same frames, so the two compute the same function.

  python3 -m venv build/onnx-venv && build/onnx-venv/bin/pip install onnxruntime onnx numpy
  build/onnx-venv/bin/python bench/runtime/onnx_compare.py [--pipeline-bin build/runtime/edgefd-pipeline]
      [--threads 1,2] [--pairs 5] [--frames 30] [--json]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

FILTERS = [16, 32, 64, 128, 256, 512, 1024, 1024, 1024]
FC = [256, 4096, 1470]
SIDE = 448
SLOPE = 0.1
MASK = (1 << 64) - 1


def splitmix_uniform(n, seed, lo, hi):
    """edgefd's FillUniform (runtime/src/tensor.cc), vectorised."""
    with np.errstate(over="ignore"):
        state = np.uint64((seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & MASK)
        z = state + np.arange(1, n + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    unit = (z >> np.uint64(40)).astype(np.float32) * np.float32(1.0 / 16777216.0)
    return np.float32(lo) + np.float32(hi - lo) * unit


def layers():
    """(kind, in_channels or inputs, outputs) of every layer with weights, in file order."""
    out, c, side = [], 3, SIDE
    for i, f in enumerate(FILTERS):
        out.append(("conv", c, f))
        c = f
        if i < 6:
            side //= 2
    n = side * side * c
    for f in FC:
        out.append(("fc", n, f))
        n = f
    return out


def make_weights(rng):
    """Random weights in edgefd's layout, as one list of (weights, bias) per layer."""
    ws = []
    for kind, n_in, n_out in layers():
        fan_in = n_in * 9 if kind == "conv" else n_in
        limit = np.sqrt(6.0 / fan_in)
        shape = (n_out, 3, 3, n_in) if kind == "conv" else (n_out, n_in)
        w = rng.uniform(-limit, limit, size=shape).astype(np.float32)
        b = rng.uniform(-0.1, 0.1, size=n_out).astype(np.float32)
        ws.append((w, b))
    return ws


def onnx_model(ws):
    """The network in ONNX: NHWC in, NCHW inside, HWC-flattened into the FC layers."""
    nodes, inits = [], []
    x = "image"
    nodes.append(helper.make_node("Transpose", [x], ["nchw"], perm=[0, 3, 1, 2]))
    x = "nchw"
    for i, (w, b) in enumerate(ws[: len(FILTERS)]):
        wn, bn = f"conv{i}_w", f"conv{i}_b"
        inits += [numpy_helper.from_array(np.ascontiguousarray(w.transpose(0, 3, 1, 2)), wn),
                  numpy_helper.from_array(b, bn)]
        nodes.append(helper.make_node("Conv", [x, wn, bn], [f"c{i}"], kernel_shape=[3, 3],
                                      pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("LeakyRelu", [f"c{i}"], [f"a{i}"], alpha=SLOPE))
        x = f"a{i}"
        if i < 6:
            nodes.append(helper.make_node("MaxPool", [x], [f"p{i}"], kernel_shape=[2, 2],
                                          strides=[2, 2]))
            x = f"p{i}"
    nodes.append(helper.make_node("Transpose", [x], ["nhwc"], perm=[0, 2, 3, 1]))
    nodes.append(helper.make_node("Flatten", ["nhwc"], ["flat"], axis=1))
    x = "flat"
    for j, (w, b) in enumerate(ws[len(FILTERS):]):
        wn, bn = f"fc{j}_w", f"fc{j}_b"
        inits += [numpy_helper.from_array(w, wn), numpy_helper.from_array(b, bn)]
        nodes.append(helper.make_node("Gemm", [x, wn, bn], [f"g{j}"], transB=1))
        x = f"g{j}"
        if j < len(FC) - 1:
            nodes.append(helper.make_node("LeakyRelu", [x], [f"l{j}"], alpha=SLOPE))
            x = f"l{j}"
    graph = helper.make_graph(
        nodes, "yolo_tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, SIDE, SIDE, 3])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, FC[-1]])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def source_images(seed=42, distinct=4):
    """The frames of `edgefd-pipeline run`'s source: image i is FillUniform(seed*31 + i)."""
    return [splitmix_uniform(SIDE * SIDE * 3, seed * 31 + i, 0.0, 1.0).reshape(1, SIDE, SIDE, 3)
            for i in range(distinct)]


def edgefd_run(binary, weights, threads, frames):
    out = subprocess.run(
        [binary, "run", "--model", "yolo-tiny", "--weights", weights, "--threads", str(threads),
         "--frames", str(frames), "--warmup", "2", "--json", "--log-level", "warn"],
        check=True, capture_output=True, text=True, env=dict(os.environ))
    return json.loads(out.stdout)


def ort_session(model_bytes, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def ort_fps(session, images, frames, warmup=2):
    """Frames per second as edgefd's run measures them: frames 1..N cycling the images, the
    first `warmup` left out."""
    for f in range(1, warmup + 1):
        session.run(None, {"image": images[f % len(images)]})
    t0 = time.perf_counter()
    for f in range(warmup + 1, frames + 1):
        session.run(None, {"image": images[f % len(images)]})
    return (frames - warmup) / (time.perf_counter() - t0)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pipeline-bin", default="build/runtime/edgefd-pipeline")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--pairs", type=int, default=5)
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    ws = make_weights(np.random.default_rng(7))
    model_bytes = onnx_model(ws).SerializeToString()
    images = source_images()
    with tempfile.TemporaryDirectory() as tmp:
        weights = os.path.join(tmp, "yolo-tiny.f32")
        with open(weights, "wb") as f:
            for w, b in ws:
                f.write(w.astype("<f4").tobytes())
                f.write(b.astype("<f4").tobytes())
        # The same function: edgefd's checksum (sum of every output of frames 1..N) against
        # onnxruntime's on the same frames.
        check_frames = 6
        got = edgefd_run(a.pipeline_bin, weights, 2, check_frames)["checksum"]
        session = ort_session(model_bytes, 2)
        want = sum(float(session.run(None, {"image": images[f % 4]})[0].astype(np.float64).sum())
                   for f in range(1, check_frames + 1))
        scale = sum(float(np.abs(session.run(None, {"image": im})[0]).sum()) for im in images)
        agree = abs(got - want) <= 1e-3 * max(scale, 1.0)
        print(f"outputs: edgefd checksum {got:.4f}, onnxruntime {want:.4f}: "
              f"{'the same function' if agree else 'DIFFERENT'}", file=sys.stderr)
        results = {"onnxruntime": ort.__version__, "outputs_agree": agree, "load_before":
                   os.getloadavg(), "rows": []}
        for threads in [int(t) for t in a.threads.split(",")]:
            session = ort_session(model_bytes, threads)
            e_fps, o_fps = [], []
            for _ in range(a.pairs):
                e_fps.append(edgefd_run(a.pipeline_bin, weights, threads, a.frames)["fps"])
                o_fps.append(ort_fps(session, images, a.frames))
            e, o = statistics.median(e_fps), statistics.median(o_fps)
            row = {"threads": threads, "edgefd_fps": e_fps, "onnxruntime_fps": o_fps,
                   "edgefd_median": round(e, 2), "onnxruntime_median": round(o, 2),
                   "ratio": round(e / o, 3)}
            results["rows"].append(row)
            print(f"tiny-YOLO, {threads} thread(s), {a.pairs} interleaved pairs of {a.frames} "
                  f"frames: edgefd {e:.1f} img/s, onnxruntime {ort.__version__} {o:.1f} img/s, "
                  f"ratio {e / o:.2f}")
        results["load_after"] = os.getloadavg()
        print(f"load average before {results['load_before'][0]:.2f}, after "
              f"{results['load_after'][0]:.2f} ({os.cpu_count()} CPUs)")
        if a.json:
            print(json.dumps(results))
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
