"""Training samples per second: ``mmzoo.train`` on a tf.data pipeline against the documents' ``fit`` on NumPy arrays.

For each model (its document defaults), copies of the same architecture with the same
weights train side by side in one process, the same number of steps each:

- ours: ``mmzoo.train(model, dataset, epochs=E, verbose=0)`` on the embedded dataset as a
  tf.data pipeline: examples cached in memory, reshuffled each epoch, batched, prefetched
  (``from_tensor_slices`` -> ``cache`` -> ``shuffle`` -> ``batch`` -> ``prefetch``);
- ours, XLA (models with recurrent layers only): the same with ``jit_compile=True``. Since
  ``jit_compile="auto"`` turns XLA on for these models on a CPU (``benchmarks/xla.py``),
  this side now runs what "ours" runs: its row shows the run-to-run spread;
- baseline, the documents' way: the same examples as NumPy arrays
  (``mmzoo.data.synthetic_arrays``) given to ``model.fit(x, y, batch_size=B, epochs=E)``
  (Keras slices and shuffles the arrays itself each epoch). The documents fed token ids as
  floats; the models now refuse that, so the arrays keep their dtypes.

Both compile with the model's own defaults in float32 (``mmzoo.build``'s, XLA per
``jit_compile="auto"``), so the two sides run the same computation and the difference is
the input pipeline and ``train``'s own overhead (its checks, callbacks). One untimed warm-up run each (tracing), then
``--repeats`` timed runs, interleaved (the order rotates), and the medians are compared.

    python benchmarks/train_throughput.py               # 1024 examples x 2 epochs, 5 repeats
    python benchmarks/train_throughput.py --quick       # 1024 examples x 1 epoch, 5 repeats
    python benchmarks/train_throughput.py --json rows.json --models emotion mlp
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


from common import check_registered, interleaved, median, run_benchmark, speed_row  # noqa: E402

DEFAULT_MODELS = ("cifar_multimodal", "attention_fusion", "mha_fusion", "emotion")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), help="registered model names")
    parser.add_argument("--examples", type=int, default=1024, help="training examples (default 1024)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per timed run (default 2)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per side (default 5)")
    parser.add_argument("--quick", action="store_true", help="1 epoch a run (1024 examples, 5 repeats)")
    parser.add_argument("--json", metavar="PATH", help="write the rows as JSON to PATH")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs = 1
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


def has_recurrent_layers(model):
    import keras

    return any(isinstance(layer, keras.layers.RNN) for layer in model._flatten_layers(include_self=False))


def bench_model(name, args, log=print):
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

    sides = {
        "ours": lambda: train(ours, dataset, epochs=args.epochs, verbose=0),
        "baseline": lambda: baseline.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=0),
    }
    if has_recurrent_layers(ours):
        # XLA speeds the LSTM models up on CPU, where Keras leaves it off (it slows convolutions).
        with_xla = mmzoo.build(name, compile=False)  # train() compiles it with jit_compile=True
        with_xla.set_weights(ours.get_weights())
        sides["ours, XLA"] = lambda: train(with_xla, dataset, epochs=args.epochs, jit_compile=True, verbose=0)
    times = interleaved(sides, args.repeats)
    samples = args.examples * args.epochs
    rates = {side: samples / median(times[side]) for side in sides}
    keras.backend.clear_session()
    for side in sides:
        log(f"  {name:18s} {side:10s} {rates[side]:8.1f} samples/s  [{', '.join(f'{t:.3f}' for t in times[side])}] s")
    rows = [speed_row(f"train {name}: mmzoo.train vs fit on arrays", rates["ours"], rates["baseline"], "samples/s")]
    if "ours, XLA" in rates:
        rows.append(speed_row(f"train {name}: mmzoo.train + XLA vs fit on arrays", rates["ours, XLA"],
                              rates["baseline"], "samples/s"))
    return rows


def measure(args, log=print):
    check_registered(args.models)
    steps = args.examples // args.batch_size * args.epochs
    log(
        f"training throughput, document defaults: {args.examples} examples x {args.epochs} epoch(s), "
        f"batch {args.batch_size} ({steps} steps a run); median of {args.repeats} interleaved runs after a warm-up; "
        "ours: mmzoo.train on tf.data (cache, shuffle, batch, prefetch), float32; "
        "baseline: model.fit on NumPy arrays with batch_size"
    )
    rows = []
    for name in args.models:
        rows += bench_model(name, args, log)
    return rows


def main(argv=None):
    return run_benchmark(parse_args, measure, "ratio = ours / baseline", argv)


if __name__ == "__main__":
    main()
