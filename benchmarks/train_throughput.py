"""Training samples per second: ``mmzoo.train`` on a tf.data pipeline against the documents' ``fit`` on NumPy arrays.

For each model (its document defaults), two copies of the same architecture with the same
weights train side by side in one process, the same number of steps each:

- ours: ``mmzoo.train(model, dataset, epochs=E, verbose=0)`` on the embedded dataset as a
  tf.data pipeline: examples cached in memory, reshuffled each epoch, batched, prefetched
  (``mmzoo.data.synthetic(..., shuffle=False).unbatch``-free: ``from_tensor_slices`` ->
  ``cache`` -> ``shuffle`` -> ``batch`` -> ``prefetch``); inputs in their own dtypes
  (token ids int32);
- baseline, the documents' way: the same examples as NumPy arrays
  (``mmzoo.data.synthetic_arrays``), every input cast to float32 as the documents fed them,
  given to ``model.fit(x, y, batch_size=B, epochs=E)`` (Keras shuffles the arrays each
  epoch; no prefetch of ours).

Both compile with the model's own defaults; on CPU ``mmzoo.train`` keeps float32 and no
XLA (its "auto"), so the two sides run the same computation and the difference is the
input pipeline and ``train``'s own overhead (its checks, callbacks). One untimed warm-up
run each (tracing), then ``--repeats`` timed runs, interleaved (the order alternates), and
the medians are compared.

    python benchmarks/train_throughput.py               # 1024 examples x 2 epochs, 5 repeats
    python benchmarks/train_throughput.py --quick       # 512 examples x 1 epoch, 3 repeats (under 2 minutes)
    python benchmarks/train_throughput.py --json rows.json --models emotion mlp
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

DEFAULT_MODELS = ("cifar_multimodal", "attention_fusion", "mha_fusion", "emotion")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), help="registered model names")
    parser.add_argument("--examples", type=int, default=1024, help="training examples (default 1024)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per timed run (default 2)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per side (default 5)")
    parser.add_argument("--quick", action="store_true", help="512 examples, 1 epoch, 3 repeats")
    parser.add_argument("--json", metavar="PATH", help="write the rows as JSON to PATH")
    args = parser.parse_args(argv)
    if args.quick:
        args.examples, args.epochs, args.repeats = min(args.examples, 512), 1, min(args.repeats, 3)
    for name in ("examples", "epochs", "batch_size", "repeats"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.examples % args.batch_size:
        parser.error("--examples must be a multiple of --batch-size (the same number of full steps each side)")
    return args


def pipeline(x, y, batch_size, seed=0):
    """Cached in memory, reshuffled each epoch, batched, prefetched."""
    import tensorflow as tf

    n = len(next(iter(x.values())))
    return (
        tf.data.Dataset.from_tensor_slices((x, y))
        .cache()
        .shuffle(n, seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )


def bench_model(name, args):
    import keras

    import mmzoo
    from mmzoo.data import synthetic_arrays
    from mmzoo.training import train

    keras.utils.set_random_seed(0)
    ours = mmzoo.build(name)
    baseline = mmzoo.build(name)
    baseline.set_weights(ours.get_weights())
    x, y = synthetic_arrays(ours, n=args.examples)
    dataset = pipeline(x, y, args.batch_size)
    x_float = {key: value.astype(np.float32) for key, value in x.items()}  # the documents fed floats

    def run_ours():
        train(ours, dataset, epochs=args.epochs, verbose=0)

    def run_baseline():
        baseline.fit(x_float, y, batch_size=args.batch_size, epochs=args.epochs, verbose=0)

    sides = {"ours": run_ours, "baseline": run_baseline}
    for run in sides.values():  # warm-up: tracing, caches
        run()
    times = {side: [] for side in sides}
    names = list(sides)
    for repeat in range(args.repeats):
        for side in names[repeat % 2 :] + names[: repeat % 2]:
            start = time.perf_counter()
            sides[side]()
            times[side].append(time.perf_counter() - start)
    samples = args.examples * args.epochs
    rates = {side: samples / statistics.median(times[side]) for side in sides}
    keras.backend.clear_session()
    return {
        "name": name,
        "ours": round(rates["ours"], 1),
        "baseline": round(rates["baseline"], 1),
        "unit": "samples/s",
        "ratio": round(rates["ours"] / rates["baseline"], 3),
        "times_s": {side: [round(t, 3) for t in values] for side, values in times.items()},
    }


def main(argv=None):
    args = parse_args(argv)
    import tensorflow as tf

    import mmzoo

    unknown = [name for name in args.models if name not in mmzoo.list_models()]
    if unknown:
        raise SystemExit(f"unknown models {unknown}; registered: {', '.join(mmzoo.list_models())}")
    started = time.perf_counter()
    rows = []
    for name in args.models:
        rows.append(bench_model(name, args))
        print(f"  {name}: done ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)

    steps = args.examples // args.batch_size * args.epochs
    print(
        f"training throughput, document defaults: {args.examples} examples x {args.epochs} epoch(s), "
        f"batch {args.batch_size} ({steps} steps a run); median of {args.repeats} interleaved runs after a warm-up"
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average "
        f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}; tensorflow {tf.__version__}"
    )
    print("ours: mmzoo.train on tf.data (cache, shuffle, batch, prefetch); "
          "baseline: model.fit on float32 NumPy arrays with batch_size")
    width = max(len("model"), *(len(row["name"]) for row in rows))
    print(f"{'model':<{width}}  {'ours':>12}  {'baseline':>12}  {'ratio':>6}")
    for row in rows:
        print(f"{row['name']:<{width}}  {row['ours']:>12.1f}  {row['baseline']:>12.1f}  {row['ratio']:>5.2f}x")
    print("(samples/s; ratio = ours / baseline)")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump([{key: row[key] for key in ("name", "ours", "baseline", "unit", "ratio")} for row in rows],
                      handle, indent=2)
    return rows


if __name__ == "__main__":
    main()
