"""Scaling: how cost grows with the input, reported as growth factors.

- ``mha_fusion`` training step time as the text length doubles (64 -> 1024 tokens by
  default): one model per length (document defaults otherwise), each trained with
  ``train_on_batch`` on the embedded data at a fixed batch size; the lengths are timed in
  interleaved rounds after a warm-up, medians per step. A factor of 2 per doubling is
  linear growth; attention over the tokens is quadratic, the LSTM linear and sequential.
- ``mmzoo.train`` time for one epoch of ``attention_fusion`` as the dataset doubles (512
  -> 4096 examples by default): the same model, interleaved rounds, medians. A factor of
  2 per doubling means no fixed per-run cost hides in training.

    python benchmarks/scaling.py            # lengths 64..1024, datasets 512..4096
    python benchmarks/scaling.py --quick    # the same sizes, fewer steps and rounds
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import growth_row, interleaved, median, report  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 128, 256, 512, 1024])
    parser.add_argument("--batch-size", type=int, default=16, help="mha_fusion batch size (default 16)")
    parser.add_argument("--steps", type=int, default=4, help="training steps per timed round (default 4)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048, 4096],
                        help="dataset sizes for attention_fusion (default 512 1024 2048 4096)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument("--quick", action="store_true", help="2 steps a round, 3 rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.repeats = min(args.steps, 2), min(args.repeats, 3)
    for name in ("batch_size", "steps", "repeats"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    for name in ("lengths", "sizes"):
        values = getattr(args, name)
        if len(values) < 2 or any(v <= 0 for v in values) or sorted(values) != values:
            parser.error(f"--{name} must be two or more increasing positive numbers")
    return args


def step_times(args):
    """``{text length: median seconds per mha_fusion training step}``."""
    import keras

    import mmzoo
    from mmzoo.data import synthetic_arrays

    def stepper(length):
        keras.utils.set_random_seed(0)
        model = mmzoo.build("mha_fusion", text_length=length)
        x, y = synthetic_arrays(model, n=args.batch_size)
        return lambda: [model.train_on_batch(x, y) for _ in range(args.steps)]

    times = interleaved({length: stepper(length) for length in args.lengths}, args.repeats)
    return {length: median(values) / args.steps for length, values in times.items()}


def epoch_times(args):
    """``{examples: median seconds for one epoch of mmzoo.train on attention_fusion}``."""
    import keras

    import mmzoo
    from mmzoo.data import synthetic

    keras.utils.set_random_seed(0)
    model = mmzoo.build("attention_fusion")
    datasets = {size: synthetic(model, n=size, batch_size=32) for size in args.sizes}
    runs = {size: (lambda data=data: mmzoo.train(model, data, epochs=1, verbose=0))
            for size, data in datasets.items()}
    times = interleaved(runs, args.repeats)
    return {size: median(values) for size, values in times.items()}


def doublings(values):
    """Consecutive pairs ``(smaller, larger)`` of the measured sizes."""
    sizes = sorted(values)
    return list(zip(sizes, sizes[1:]))


def measure(args, log=print):
    steps = step_times(args)
    epochs = epoch_times(args)
    log(f"scaling: mha_fusion train step at batch {args.batch_size} ({args.steps} steps a round), "
        f"attention_fusion one epoch of mmzoo.train at batch 32; medians of {args.repeats} interleaved rounds")
    log("  mha_fusion step: " + ", ".join(f"{n} tokens {t * 1000:.1f} ms" for n, t in steps.items()))
    log("  attention_fusion epoch: " + ", ".join(f"{n} examples {t:.2f} s" for n, t in epochs.items()))
    rows = [growth_row(f"scaling: mha_fusion step, {large} vs {small} tokens", steps[large] * 1000,
                       steps[small] * 1000, "ms/step") for small, large in doublings(steps)]
    first, last = min(steps), max(steps)
    if len(steps) > 2:
        rows.append(growth_row(f"scaling: mha_fusion step, {last} vs {first} tokens", steps[last] * 1000,
                               steps[first] * 1000, "ms/step"))
    rows += [growth_row(f"scaling: train epoch, {large} vs {small} examples", epochs[large], epochs[small], "s")
             for small, large in doublings(epochs)]
    return rows


def main(argv=None):
    rows = measure(parse_args(argv))
    report(rows, "(ratio: growth factor, larger over smaller; 2.0 per doubling is linear)")
    return rows


if __name__ == "__main__":
    main()
