#!/usr/bin/env python3
"""Time the ONNX models of a `nas profile bundle` on this device.

Stand-alone on purpose: it needs only Python 3.8+, numpy and onnxruntime (no torch, no nas),
so it runs on phones (Termux), Raspberry Pi and Jetson boards. Usage:

    python run_bundle.py BUNDLE_DIR [--out results.jsonl] [--threads 1] [--provider CPU]
                                    [--budget-minutes M] [--rounds 3]

It writes one JSON line per model, `{"arch": ..., "latency_ms": ...}` or
`{"block": ..., "latency_ms": ...}`, appending as it goes (a killed run resumes where it
stopped). Bring the file back and run `nas profile import results.jsonl --device NAME ...`.

Method (the same as `nas profile`): warm-up, repeats sized to a target duration, timings far
above the upper quartile re-measured, the median kept with its inter-quartile range; every
model is measured in `--rounds` passes spread over the session (a phone that heats up and slows
down, or a burst of other work, then spoils one measurement of a model, not its latency):
`nas profile import` keeps each model's lowest value.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import numpy as np
import onnxruntime

# the defaults of nas.profile.measure.MeasureSettings
WARMUP, WARMUP_S, REPEATS, TARGET_S, MAX_REPEATS = 3, 0.04, 10, 0.25, 200
OUTLIER_IQR, ROUNDS = 3.0, 2


def session(path: str, threads: int, provider: str) -> Any:
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    return onnxruntime.InferenceSession(path, options, providers=[provider])


def timed_calls(sess: Any, feed: dict[str, Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        sess.run(None, feed)
        out.append((time.perf_counter() - start) * 1e3)
    return out


def measure(sess: Any, feed: dict[str, Any]) -> dict[str, Any]:
    start = time.perf_counter()
    warm: list[float] = []
    while len(warm) < WARMUP or time.perf_counter() - start < WARMUP_S:
        warm += timed_calls(sess, feed, 1)
        if len(warm) >= 10 * WARMUP:
            break
    per_call = float(np.median(warm[len(warm) // 2:]))
    repeats = min(MAX_REPEATS, max(REPEATS, int(TARGET_S * 1e3 / max(per_call, 1e-6))))
    timings = np.asarray(timed_calls(sess, feed, repeats))
    for _ in range(ROUNDS):
        q1, q3 = np.percentile(timings, [25, 75])
        spread = max(q3 - q1, 0.01 * float(np.median(timings)))
        outliers = np.flatnonzero(timings > q3 + OUTLIER_IQR * spread)
        if outliers.size == 0:
            break
        timings[outliers] = timed_calls(sess, feed, int(outliers.size))
    q1, median, q3 = np.percentile(timings, [25, 50, 75])
    return {"latency_ms": float(median), "q1_ms": float(q1), "q3_ms": float(q3),
            "n": int(timings.size)}


def done_files(out: str) -> dict[str, int]:
    """How many measurements of each model file `out` already holds."""
    done: dict[str, int] = {}
    if not os.path.isfile(out):
        return done
    with open(out) as handle:
        for line in handle:
            try:
                name = json.loads(line)["file"]
            except (ValueError, KeyError):
                continue  # a line torn by a kill
            done[name] = done.get(name, 0) + 1
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time a nas profile bundle with onnxruntime.")
    parser.add_argument("bundle", help="the bundle folder (holds bundle.json)")
    parser.add_argument("--out", default="results.jsonl", help="JSONL file to append results to")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (0: default)")
    parser.add_argument("--provider", default="CPU", help="execution provider, e.g. CPU, CUDA")
    parser.add_argument("--budget-minutes", type=float, default=None, help="stop after this")
    parser.add_argument("--rounds", type=int, default=3,
                        help="passes over all models; import keeps each model's lowest value")
    args = parser.parse_args(argv)
    provider = args.provider if args.provider.endswith("ExecutionProvider") \
        else args.provider + "ExecutionProvider"
    if provider not in onnxruntime.get_available_providers():
        have = ", ".join(onnxruntime.get_available_providers())
        sys.exit(f"error: provider {provider} not available (have: {have})")
    with open(os.path.join(args.bundle, "bundle.json")) as handle:
        manifest = json.load(handle)
    done, start = done_files(args.out), time.perf_counter()
    todo = [(r, item) for r in range(args.rounds) for item in manifest["items"]
            if done.get(item["file"], 0) <= r]
    rng = np.random.default_rng(0)
    for index, (round_index, item) in enumerate(todo, start=1):
        if args.budget_minutes and time.perf_counter() - start > 60 * args.budget_minutes:
            print("time budget reached; run again to continue", file=sys.stderr)
            break
        sess = session(os.path.join(args.bundle, item["file"]), args.threads, provider)
        feed = {"input": rng.standard_normal(item["input_shape"]).astype(np.float32)}
        record = {key: item[key] for key in ("arch", "block") if key in item}
        record.update(measure(sess, feed), file=item["file"], threads=args.threads,
                      provider=provider, round=round_index)
        with open(args.out, "a") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
        print(f"[{index}/{len(todo)}] {item['file']} {record['latency_ms']:.3f} ms",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
