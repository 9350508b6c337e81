"""XLA on this machine, per model: training samples/s with ``jit_compile=True`` against ``False``.

The table that ``jit_compile="auto"`` is decided from (:func:`mmzoo.training.resolve_jit_compile`).
For each registered model (its document defaults), two copies with the same weights,
compiled with the model's own defaults in float32, one with ``jit_compile=False`` and one
with ``jit_compile=True``, train the same steps with ``fit`` on the same NumPy arrays
(``mmzoo.data.synthetic_arrays``), interleaved, after an untimed warm-up each (tracing, and
XLA's compilation). The number of steps a run is chosen per model from the warm-up so that
a run takes about ``--seconds`` (the big ImageNet-sized models get a few steps, the small
ones many), the same for both sides.

Rows, for each model:

- ``xla <name>: jit_compile=True vs False`` (samples/s; above 1: XLA is faster);
- ``xla <name>: jit_compile='auto' (on|off) vs False``: what ``mmzoo.train``'s default
  gives. ``"auto"`` compiles exactly one of the two sides measured, so its rate is that
  side's: the XLA side when auto turns XLA on, the ``False`` side (ratio 1) when it leaves
  it off. The target is that this ratio is never below 1 (within the run-to-run spread),
  and at least 1.3 for the recurrent models.

    python benchmarks/xla.py                    # every model, about 2 s a run, 3 repeats
    python benchmarks/xla.py --quick            # about 0.7 s a run, without the ImageNet-sized models
    python benchmarks/xla.py --models attention_fusion emotion --json rows.json
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import check_registered, interleaved, median, run_benchmark, speed_row  # noqa: E402

# 224x224 inputs: one step takes 1-30 s on 2 cores, a model minutes; --quick leaves them out.
IMAGENET_SIZED = ("early_fusion", "image_text_classifier", "pretrained_fusion", "vgg16_features")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", help="registered model names (default: every model)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=2.0, help="target length of one timed run (default 2)")
    parser.add_argument("--max-steps", type=int, default=64, help="at most this many steps a run (default 64)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per side (default 3)")
    parser.add_argument("--small", action="store_true", help="each model at its registry test_config (for tests)")
    parser.add_argument("--quick", action="store_true", help="runs of about 0.7 s, without the ImageNet-sized models")
    parser.add_argument("--json", metavar="PATH", help="write the rows as JSON to PATH")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds = 0.7
    for name in ("batch_size", "max_steps", "repeats"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    return args


def _copy(model, jit_compile):
    import mmzoo  # noqa: F401  (registers the model classes for from_config)

    twin = type(model).from_config(model.get_config())
    twin.set_weights(model.get_weights())
    twin.compile(**twin.default_compile_arguments(), jit_compile=jit_compile)
    return twin


def bench_model(name, args, log=print):
    import time

    import keras

    import mmzoo
    from mmzoo.data import synthetic_arrays
    from mmzoo.registry import get_entry
    from mmzoo.training import resolve_jit_compile

    keras.utils.set_random_seed(0)
    arguments = dict(get_entry(name).test_config) if args.small else {}
    model = mmzoo.build(name, compile=False, **arguments)
    sides = {"off": _copy(model, False), "on": _copy(model, True)}
    auto = resolve_jit_compile(sides["off"], "auto")
    batch = args.batch_size
    x, y = synthetic_arrays(model, n=batch)

    def step(twin, steps):
        for _ in range(steps):
            twin.train_on_batch(x, y)

    warmup = {}
    for side, twin in sides.items():  # tracing and XLA compilation, untimed
        step(twin, 1)
        start = time.perf_counter()
        step(twin, 1)
        warmup[side] = time.perf_counter() - start
    steps = max(1, min(args.max_steps, round(args.seconds / max(min(warmup.values()), 1e-4))))
    times = interleaved({side: (lambda t=twin: step(t, steps)) for side, twin in sides.items()},
                        args.repeats, warmup=0)
    rates = {side: steps * batch / median(times[side]) for side in sides}
    log(f"  {name:22s} {steps:3d} steps x {batch}: off {rates['off']:8.1f}  on {rates['on']:8.1f} samples/s "
        f"({rates['on'] / rates['off']:.2f}x); auto -> {'on' if auto else 'off'}")
    keras.backend.clear_session()
    chosen = "on" if auto else "off"
    return [
        speed_row(f"xla {name}: jit_compile=True vs False", rates["on"], rates["off"], "samples/s"),
        speed_row(f"xla {name}: jit_compile='auto' ({chosen}) vs False", rates[chosen], rates["off"], "samples/s"),
    ]


def measure(args, log=print):
    import mmzoo

    names = args.models or [
        name for name in mmzoo.list_models() if not (args.quick and name in IMAGENET_SIZED)
    ]
    check_registered(names)
    log(
        f"XLA per model, {'test_config' if args.small else 'document defaults'}, float32, batch {args.batch_size}: "
        f"train_on_batch steps (about {args.seconds} s a run, at most {args.max_steps} steps), "
        f"median of {args.repeats} interleaved runs after a warm-up each"
    )
    rows = []
    for name in names:
        rows += bench_model(name, args, log)
    return rows


def main(argv=None):
    return run_benchmark(parse_args, measure, "ratio = samples/s with XLA (or auto) / samples/s without", argv)


if __name__ == "__main__":
    main()
