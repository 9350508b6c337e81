"""Loading a preset against building the model: what ``mmzoo.build(PRESET_DIR)`` adds.

For each model, one side builds it from its name (``mmzoo.build(name, compile=False, **config)``),
the other rebuilds it from a preset folder of the same model (``mmzoo.build(folder,
compile=False)``: read the JSON, build, load ``model.weights.h5``). The two run interleaved
in this process after a warm-up; the row is the median time of each, and its ratio the
build time over the preset time (1.0: loading costs nothing; issue 15's target: the preset
adds less than 1 second). ``fusion_classifier`` is measured at its default size (three
encoders, the largest weight file of the zoo's own models), the others at their defaults.

    python benchmarks/presets.py
    python benchmarks/presets.py --models mlp --repeats 3
"""

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import interleaved, median, report, time_row  # noqa: E402

DEFAULT_MODELS = ("fusion_classifier", "attention_fusion", "cifar_multimodal")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), help="registered model names")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds per side (default 7)")
    parser.add_argument("--quick", action="store_true", help="3 rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats = 3
    if args.repeats <= 0:
        parser.error("--repeats must be positive")
    return args


def measure(args, log=print):
    import mmzoo

    rows = []
    with tempfile.TemporaryDirectory(prefix="mmzoo-presets-") as root:
        for name in args.models:
            model = mmzoo.build(name, compile=False)
            folder = mmzoo.save_preset(model, os.path.join(root, name))
            size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
            times = interleaved(
                {"build": lambda: mmzoo.build(name, compile=False), "preset": lambda: mmzoo.build(str(folder), compile=False)},
                repeats=args.repeats,
            )
            build, preset = median(times["build"]), median(times["preset"])
            log(f"{name}: build {build:.3f} s, from the preset {preset:.3f} s (+{preset - build:.3f} s; "
                f"{len(model.weights)} tensors, {size / 1e6:.1f} MB)")
            rows.append(time_row(f"presets: {name} build(PRESET) vs build(name)", preset, build, "s"))
    return rows


def main(argv=None):
    rows = measure(parse_args(argv))
    report(rows, "(ratio: build time over preset time; below 1, loading the weights adds the difference)")
    return rows


if __name__ == "__main__":
    main()
