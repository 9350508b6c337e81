"""Serving: an exported SavedModel against calling the Keras model directly.

The model (``attention_fusion`` by default, document defaults, as the main job exports
it) is exported with ``mmzoo.export`` to a temporary directory and loaded back with
``tf.saved_model.load``. Ways to get predictions, on the same inputs:

- the SavedModel: its ``serve`` function (the ``serving_default`` signature TF Serving
  runs), a traced graph;
- ``mmzoo.load_saved_model``: the same function behind mmzoo's input checks (keys,
  shapes, dtypes, finite values), shown for information;
- baseline, ``model.predict_on_batch(inputs)``: the Keras model called through its
  compiled predict function, the fastest way Keras itself offers;
- ``model(inputs, training=False)``: the Keras model called eagerly, op by op. Its LSTM
  then runs its time steps as a Python loop (about 0.2 s a call here), so it is timed
  over fewer calls (``--eager-calls``) and reported in one row of its own.

Latency at batch 1: single calls, the sides alternating call by call (the order rotating
each round) after a warm-up, p50 and p99 over ``--calls`` calls each. Throughput at batch
64: the median of ``--repeats`` interleaved rounds of ``--batches`` calls.

    python benchmarks/serving.py            # 500 calls, 20 batches x 5 rounds
    python benchmarks/serving.py --quick    # 200 calls, 10 batches x 3 rounds
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from common import interleaved, median, percentile, report, speed_row, time_row  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="attention_fusion", help="registered model name")
    parser.add_argument("--calls", type=int, default=500, help="timed batch-1 calls per side (default 500)")
    parser.add_argument("--batch-size", type=int, default=64, help="throughput batch size (default 64)")
    parser.add_argument("--batches", type=int, default=20, help="batches per throughput round (default 20)")
    parser.add_argument("--repeats", type=int, default=5, help="throughput rounds per side (default 5)")
    parser.add_argument("--eager-calls", type=int, default=20, help="timed batch-1 eager calls (default 20)")
    parser.add_argument("--quick", action="store_true", help="200 calls, 10 batches x 3 rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.calls, args.batches, args.repeats = min(args.calls, 200), min(args.batches, 10), min(args.repeats, 3)
    for name in ("calls", "batch_size", "batches", "repeats", "eager_calls"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    return args


def latencies(sides, calls, inputs):
    """``{side: [seconds per call]}``, the sides alternating call by call."""
    names = list(sides)
    for name in names:  # warm-up
        for _ in range(10):
            sides[name](inputs)
    times = {name: [] for name in names}
    for call in range(calls):
        shift = call % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            sides[name](inputs)
            times[name].append(time.perf_counter() - start)
    return times


def measure(args, log=print):
    import keras
    import tensorflow as tf

    import mmzoo
    from mmzoo.data import synthetic_arrays

    keras.utils.set_random_seed(0)
    model = mmzoo.build(args.model)
    with tempfile.TemporaryDirectory() as directory:
        path = mmzoo.export(model, export_dir=directory, verbose=False)
        served = mmzoo.load_saved_model(path)
        loaded = tf.saved_model.load(path)  # keep it: its functions reference its variables
        serve = loaded.serve

        def numpy_outputs(outputs):
            return {key: value.numpy() for key, value in outputs.items()} if isinstance(outputs, dict) \
                else outputs.numpy()

        sides = {
            "SavedModel": lambda x: numpy_outputs(serve(x)),
            "load_saved_model": served,
            "predict_on_batch": model.predict_on_batch,
        }
        x, _ = synthetic_arrays(model, n=args.batch_size, split="test")
        one = {key: tf.constant(value[:1]) for key, value in x.items()}
        batch = {key: tf.constant(value) for key, value in x.items()}
        per_call = latencies(sides, args.calls, one)
        eager = latencies({"eager call": lambda x: numpy_outputs(model(x, training=False))}, args.eager_calls, one)
        per_call["eager call"] = eager["eager call"]
        rounds = interleaved({name: (lambda run=run: [run(batch) for _ in range(args.batches)])
                              for name, run in sides.items()}, args.repeats)
    p50 = {name: percentile(values, 50) * 1000 for name, values in per_call.items()}
    p99 = {name: percentile(values, 99) * 1000 for name, values in per_call.items()}
    rate = {name: args.batch_size * args.batches / median(values) for name, values in rounds.items()}
    log(f"serving {args.model}: batch-1 latency over {args.calls} alternating calls after a warm-up "
        f"({args.eager_calls} for the eager call); throughput at batch {args.batch_size}, median of "
        f"{args.repeats} interleaved rounds of {args.batches} calls")
    for name in per_call:
        throughput = f"{rate[name]:9.1f} samples/s" if name in rate else ""
        log(f"  {name:17s} p50 {p50[name]:8.3f} ms  p99 {p99[name]:8.3f} ms  {throughput}")
    return [
        time_row("serving batch 1 p50: SavedModel vs predict_on_batch", p50["SavedModel"], p50["predict_on_batch"], "ms"),
        time_row("serving batch 1 p99: SavedModel vs predict_on_batch", p99["SavedModel"], p99["predict_on_batch"], "ms"),
        speed_row(f"serving batch {args.batch_size}: SavedModel vs predict_on_batch", rate["SavedModel"],
                  rate["predict_on_batch"], "samples/s"),
        time_row("serving batch 1 p50: SavedModel vs eager model(x)", p50["SavedModel"], p50["eager call"], "ms"),
    ]


def main(argv=None):
    rows = measure(parse_args(argv))
    report(rows, "(ratio: speed-up of the SavedModel over the Keras side)")
    return rows


if __name__ == "__main__":
    main()
