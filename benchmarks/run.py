"""Run every benchmark, print one table, write ``benchmarks/results/latest.json``.

Each benchmark compares two sides in this one process, interleaved, after a warm-up, and
reports medians (see each script's docstring for what exactly runs):

- ``train_throughput.py``: ``mmzoo.train`` on a tf.data pipeline against the documents'
  ``fit`` on NumPy arrays, for cifar_multimodal, attention_fusion, mha_fusion, emotion;
- ``audio_features.py``: in-graph batched log-mel against per-clip librosa;
- ``serving.py``: an exported SavedModel against calling the Keras model, batch-1 latency
  (p50, p99) and batch-64 throughput;
- ``scaling.py``: ``mha_fusion`` step time as the text doubles (64 -> 1024 tokens) and
  training time as the dataset doubles, as growth factors;
- ``presets.py``: ``mmzoo.build(PRESET_DIR)`` against ``mmzoo.build(name)``;
- ``peer_pytorch.py``: ``mmzoo.train`` against the same networks written in plain PyTorch
  (eager, and ``torch.compile`` outside ``--quick``), for attention_fusion, mha_fusion,
  emotion and fusion_classifier;
- ``loader.py``: ``from_directory`` examples/s on a folder of PNG, WAV, TXT and frame
  folders, per modality mix, against the samples/s ``fusion_classifier`` training consumes,
  and training from the files against training from memory;
- ``xla.py``: every model's training with ``jit_compile=True`` against ``False``, and what
  ``jit_compile="auto"`` gives (the table it is decided from).

``gpu.py`` is not run here: it runs Keras on JAX (the GPU machine has no TensorFlow), which
cannot share a process with the TensorFlow benchmarks; run it on its own.

The JSON is a list of ``{"name", "ours", "baseline", "unit", "ratio"}``. ``ratio`` is the
speed-up of ours over the baseline, except for the ``scaling:`` rows, where it is the
growth factor of the larger size over the smaller.

    python benchmarks/run.py            # the full runs (about 25 minutes on 2 cores: xla and peer are long)
    python benchmarks/run.py --quick    # smaller runs, about 6-7 minutes on 2 cores
    python benchmarks/run.py --only audio serving --output /tmp/rows.json
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import audio_features  # noqa: E402
import loader  # noqa: E402
import peer_pytorch  # noqa: E402
import presets  # noqa: E402
import scaling  # noqa: E402
import serving  # noqa: E402
import train_throughput  # noqa: E402
import xla  # noqa: E402
from common import report, write_json  # noqa: E402

BENCHMARKS = {
    "training": train_throughput,
    "audio": audio_features,
    "serving": serving,
    "scaling": scaling,
    "presets": presets,
    "peer": peer_pytorch,
    "loader": loader,
    "xla": xla,
}
# --quick arguments per benchmark; audio keeps 256 clips so that its ratio is stable.
QUICK = {
    "training": ["--quick"],
    "audio": ["--clips", "256", "--repeats", "3"],
    "serving": ["--quick"],
    "scaling": ["--quick"],
    "presets": ["--quick"],
    "peer": ["--quick"],
    "loader": ["--quick"],
    "xla": ["--quick"],
}
DEFAULT_OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "latest.json")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (about 6-7 minutes on 2 cores)")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="run only these benchmarks")
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help=f"the JSON file (default {DEFAULT_OUTPUT})")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    names = args.only or list(BENCHMARKS)
    started = time.perf_counter()
    rows = []
    for name in names:
        module = BENCHMARKS[name]
        module_args = module.parse_args(QUICK[name] if args.quick else [])
        print(f"[{time.perf_counter() - started:5.0f} s] {name} ...", flush=True)
        rows += module.measure(module_args, log=print)
    print()
    report(rows, "(ratio: speed-up of ours over the baseline; scaling rows: growth factor, 2.0 per doubling is linear)")
    write_json(rows, args.output)
    print(f"wrote {args.output} ({len(rows)} rows) in {time.perf_counter() - started:.0f} s")
    return rows


if __name__ == "__main__":
    main()
