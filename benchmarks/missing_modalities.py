"""Modality dropout against a missing modality, on the real check set (issue 16's third target).

Trains ``fusion_classifier`` on the real check set (``benchmarks/make_real_data.py``: images,
speech and captions of words) twice, built with ``missing_modalities=True`` and otherwise
the defaults: once with ``modality_dropout=0.25`` (the default; ``--rates 0.5,0`` for
another) and once with 0. Each model is
then tested with every modality present and with each modality missing in turn (its
``<modality>_present`` flag 0 and its input zeros, as ``from_directory(missing="mask")``
yields). The loss is the drop in test accuracy from the full test; the target is that the
model trained with modality dropout loses at most half of what the model trained without it
loses (on average over the modalities; each modality is reported too).

    python benchmarks/make_real_data.py /tmp/mmzoo-real              # once
    python benchmarks/missing_modalities.py --data /tmp/mmzoo-real    # about 10 minutes on 2 cores
"""

import argparse
import json
import os
import pathlib
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import machine_line, write_json  # noqa: E402

MODALITIES = ("image", "audio", "text")
RATES = (0.25, 0.0)
DEFAULT_OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "missing_modalities.json")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="a folder with train/ and test/ class folders")
    parser.add_argument("--epochs", type=int, default=40, help="most epochs (early stopping ends sooner)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=48)
    parser.add_argument("--sequence-length", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rates", default=",".join(map(str, RATES)),
                        help="modality_dropout rates, the one to judge first and 0 (the reference) last")
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help=f"rows as JSON (default {DEFAULT_OUTPUT})")
    args = parser.parse_args(argv)
    args.rates = tuple(float(rate) for rate in args.rates.split(","))
    if len(args.rates) != 2 or args.rates[1] != 0.0:
        parser.error(f"--rates takes two rates, the second 0 (the reference). Received: --rates {args.rates}")
    for split in ("train", "test"):
        if not (pathlib.Path(args.data) / split).is_dir():
            parser.error(f"--data {args.data!r} has no {split}/ folder (make one with benchmarks/make_real_data.py)")
    return args


def with_flags(dataset, missing=None):
    """``dataset`` with ``<modality>_present`` flags: 1, or 0 and a zero input for ``missing``."""
    import tensorflow as tf

    def add(x, y):
        batch = tf.shape(x[MODALITIES[0]])[0]
        out = dict(x)
        for key in MODALITIES:
            gone = key == missing
            out[f"{key}_present"] = tf.fill([batch], 0.0 if gone else 1.0)
            if gone:
                out[key] = tf.zeros_like(x[key])
        return out, y

    return dataset.map(add)


def measure(args, log=print):
    import keras

    import mmzoo
    from real_data import load

    train, validation, test, class_names, shapes, vectorizer = load(args)
    results = []
    for rate in args.rates:
        keras.utils.set_random_seed(args.seed)
        start = time.perf_counter()
        history = mmzoo.train(
            "fusion_classifier", with_flags(train), validation_data=with_flags(validation), epochs=args.epochs,
            verbose=0, inputs={key: shapes[key] for key in MODALITIES}, num_classes=len(class_names),
            vocabulary_size=vectorizer.vocabulary_size(), missing_modalities=True, modality_dropout=rate,
        )
        seconds = time.perf_counter() - start
        model = history.model
        row = {"modality_dropout": rate, "epochs": len(history.epoch), "seconds": round(seconds, 1)}
        for missing in (None,) + MODALITIES:
            accuracy = model.evaluate(with_flags(test, missing), verbose=0, return_dict=True)["accuracy"]
            row["all present" if missing is None else f"{missing} missing"] = round(float(accuracy), 4)
        row["losses"] = {m: round(row["all present"] - row[f"{m} missing"], 4) for m in MODALITIES}
        row["mean loss"] = round(sum(row["losses"].values()) / len(MODALITIES), 4)
        log(f"modality_dropout={rate}: " + ", ".join(f"{k} {v}" for k, v in row.items() if k != "losses"))
        results.append(row)
    return results


def summary(results):
    """The target: the loss with modality dropout at most half the loss without it."""
    with_dropout, without = results
    ratio = with_dropout["mean loss"] / without["mean loss"] if without["mean loss"] > 0 else float("nan")
    per_modality = {
        m: (round(with_dropout["losses"][m] / without["losses"][m], 3) if without["losses"][m] > 0 else None)
        for m in MODALITIES
    }
    return {
        "mean loss with modality dropout": with_dropout["mean loss"],
        "mean loss without": without["mean loss"],
        "ratio (target <= 0.5)": round(ratio, 3),
        "ratio per missing modality": per_modality,
        "target met": bool(ratio <= 0.5),
    }


def rows(results):
    """Rows for ``benchmarks/run.py``'s table: accuracy with a modality missing, with and without dropout."""
    with_dropout, without = results
    return [
        {"name": f"missing_modalities: {key}, modality_dropout {with_dropout['modality_dropout']} vs 0",
         "ours": with_dropout[key],
         "baseline": without[key], "unit": "accuracy", "ratio": round(with_dropout[key] / max(without[key], 1e-9), 3)}
        for key in ["all present"] + [f"{m} missing" for m in MODALITIES]
    ]


def main(argv=None):
    args = parse_args(argv)
    print(machine_line())
    results = measure(args)
    print()
    header = ["modality_dropout", "all present"] + [f"{m} missing" for m in MODALITIES] + ["mean loss", "seconds"]
    print(" | ".join(header))
    for row in results:
        print(" | ".join(str(row[key]) for key in header))
    print(json.dumps(summary(results), indent=2))
    write_json(rows(results), args.output)
    return results


if __name__ == "__main__":
    main()
