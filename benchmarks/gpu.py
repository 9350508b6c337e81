"""The GPU path on JAX: training samples/s in float32 without XLA against bfloat16 with XLA.

One command for the GPU machine this project is sometimes lent, which has JAX and no
TensorFlow: it runs Keras on JAX (``KERAS_BACKEND=jax``, set here) and never imports
TensorFlow. For each model (its document defaults; ``--small``: its registry
``test_config``), two copies with the same weights train with :func:`mmzoo.train` on the
same NumPy arrays (:func:`mmzoo.data.synthetic_arrays`), one epoch of ``--examples`` a run:

- baseline: ``mixed_precision="float32"``, ``jit_compile=False`` (JAX dispatches each
  operation from Python);
- ours: ``mixed_precision="mixed_bfloat16"``, ``jit_compile=True`` (one XLA program a step).

One untimed warm-up run each (tracing and compilation), then ``--repeats`` timed runs,
interleaved, medians compared. ``--data-parallel`` trains both with
``strategy="data_parallel"`` over every device JAX finds. It prints the devices, a table
and, with ``--json``, the rows. The target (issue 17): ratio at least 2 for the
convolutional and attention models, on a GPU.

    python benchmarks/gpu.py                      # 5 models, 2048 examples, batch 128, 3 repeats
    python benchmarks/gpu.py --quick              # 1024 examples, 2 repeats
    python benchmarks/gpu.py --small --examples 32 --batch-size 8 --repeats 1   # a CPU smoke run
"""

import argparse
import os
import sys
import time

os.environ["KERAS_BACKEND"] = "jax"  # before Keras is imported, here or by common
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import check_registered, interleaved, median, run_benchmark, speed_row  # noqa: E402

DEFAULT_MODELS = ("attention_fusion", "mha_fusion", "emotion", "cross_modal_retrieval", "fusion_classifier")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), help="registered model names")
    parser.add_argument("--examples", type=int, default=2048, help="training examples a run (default 2048)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per side (default 3)")
    parser.add_argument("--small", action="store_true", help="each model at its registry test_config")
    parser.add_argument("--data-parallel", action="store_true", help="strategy='data_parallel' over every device")
    parser.add_argument("--quick", action="store_true", help="1024 examples, 2 repeats")
    parser.add_argument("--json", metavar="PATH", help="write the rows as JSON to PATH")
    args = parser.parse_args(argv)
    if args.quick:
        args.examples, args.repeats = 1024, 2
    for name in ("examples", "batch_size", "repeats"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.examples % args.batch_size:
        parser.error("--examples must be a multiple of --batch-size (the same number of full steps each side)")
    return args


def device_line():
    import jax
    import keras

    devices = ", ".join(sorted({f"{d.platform}:{getattr(d, 'device_kind', '?')}" for d in jax.devices()}))
    return (f"keras {keras.__version__} on jax {jax.__version__}; {len(jax.devices())} device(s): {devices}; "
            f"tensorflow imported: {'tensorflow' in sys.modules}")


def bench_model(name, args, log=print):
    import keras

    import mmzoo
    from mmzoo.data import synthetic_arrays
    from mmzoo.registry import get_entry

    arguments = dict(get_entry(name).test_config) if args.small else {}
    strategy = "data_parallel" if args.data_parallel else None
    keras.utils.set_random_seed(0)
    models = {}
    for side, policy in (("float32", "float32"), ("bfloat16_xla", "mixed_bfloat16")):
        keras.config.set_dtype_policy(policy)
        try:
            models[side] = mmzoo.build(name, compile=False, **arguments)
        finally:
            keras.config.set_dtype_policy("float32")
    models["bfloat16_xla"].set_weights(models["float32"].get_weights())
    x, y = synthetic_arrays(models["float32"], n=args.examples)
    data = (x,) if y is None else (x, y)
    options = dict(epochs=1, batch_size=args.batch_size, verbose=0, strategy=strategy, early_stopping_patience=None,
                   reduce_lr_patience=None, restore_best_weights=False)
    # train() compiles a model that is not compiled yet, with its defaults (Adam, its losses).
    sides = {
        "float32": lambda: mmzoo.train(models["float32"], data, mixed_precision="float32",
                                       jit_compile=False, **options),
        "bfloat16_xla": lambda: mmzoo.train(models["bfloat16_xla"], data, mixed_precision="mixed_bfloat16",
                                            jit_compile=True, **options),
    }
    started = time.perf_counter()
    times = interleaved(sides, args.repeats)
    rates = {side: args.examples / median(times[side]) for side in sides}
    log(f"  {name:22s} float32 {rates['float32']:9.1f}  bfloat16+XLA {rates['bfloat16_xla']:9.1f} samples/s "
        f"({rates['bfloat16_xla'] / rates['float32']:.2f}x; {time.perf_counter() - started:.0f} s)")
    keras.backend.clear_session()
    return [speed_row(f"gpu {name}: bfloat16 + XLA vs float32 without XLA", rates["bfloat16_xla"],
                      rates["float32"], "samples/s")]


def measure(args, log=print):
    check_registered(args.models)
    log(device_line())
    log(f"mmzoo.train on NumPy arrays, {'test_config' if args.small else 'document defaults'}: "
        f"{args.examples} examples x 1 epoch, batch {args.batch_size}; median of {args.repeats} interleaved runs "
        "after a warm-up; baseline float32 without XLA, ours mixed_bfloat16 with jit_compile=True"
        + (", strategy='data_parallel'" if args.data_parallel else ""))
    rows = []
    for name in args.models:
        rows += bench_model(name, args, log)
    return rows


def main(argv=None):
    return run_benchmark(parse_args, measure, "ratio = bfloat16 + XLA / float32 without XLA", argv)


if __name__ == "__main__":
    main()
