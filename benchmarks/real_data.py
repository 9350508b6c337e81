"""The real check set: ``fusion_classifier`` against a logistic regression on the same raw inputs.

On a folder of real files (``benchmarks/make_real_data.py``: words rendered in Debian's fonts
as PNG, spoken by espeak-ng as WAV, captions from a word list as TXT), train

- ``fusion_classifier`` on every modality with each fusion operator,
- ``fusion_classifier`` on each single modality (the ablations),
- a scikit-learn logistic regression on the same inputs (pixels; MFCC means and standard
  deviations; bag of words), on each modality and on all of them (features standardised,
  ``C`` picked on the validation split; all of them: the better on validation of late
  fusion and of a block-weighted concatenation, see :func:`logistic_regressions`),

and print one table of test accuracies with the time each took. Every run reads the same
train / validation split of ``DATA/train`` (seeded) and is tested on ``DATA/test``.

    python benchmarks/make_real_data.py /tmp/mmzoo-real          # once
    python benchmarks/real_data.py --data /tmp/mmzoo-real         # about 30 minutes on 2 cores
    python benchmarks/real_data.py --data /tmp/mmzoo-real --quick # concat, ablations, baseline
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
FUSIONS = ("concat", "weighted", "product", "attention", "graph", "gating", "tensor", "low_rank", "gmu", "film",
           "cross_attention")
DEFAULT_OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "real_data.json")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="a folder with train/ and test/ class folders")
    parser.add_argument("--epochs", type=int, default=40, help="most epochs (early stopping ends sooner)")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size (64, as mmzoo train)")
    parser.add_argument("--image-size", type=int, default=48)
    parser.add_argument("--sequence-length", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fusions", default=",".join(FUSIONS), help="comma-separated fusion names")
    parser.add_argument("--quick", action="store_true", help="concat fusion, the ablations and the baseline only")
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help=f"rows as JSON (default {DEFAULT_OUTPUT})")
    args = parser.parse_args(argv)
    for split in ("train", "test"):
        if not (pathlib.Path(args.data) / split).is_dir():
            parser.error(f"--data {args.data!r} has no {split}/ folder (make one with benchmarks/make_real_data.py)")
    if args.quick:
        args.fusions = "concat"
    return args


# --- data ----------------------------------------------------------------------------------


def load(args):
    """``(train, validation, test, class_names, input shapes)``: batched datasets of every modality."""
    from mmzoo.data import from_directory

    options = dict(
        modalities=list(MODALITIES), image_size=(args.image_size, args.image_size), color_mode="grayscale",
        sample_rate=16000, audio_length=16000, audio_mask=False, sequence_length=args.sequence_length,
        batch_size=args.batch_size, seed=args.seed, cache=True,
    )
    splits = from_directory(pathlib.Path(args.data) / "train", validation_split=0.15, **options)
    test = from_directory(
        pathlib.Path(args.data) / "test", validation_split=0.0, shuffle=False, vectorizer=splits.vectorizer,
        class_names=splits.class_names, **options,
    ).train
    shapes = {key: tuple(spec.shape[1:]) for key, spec in splits.train.element_spec[0].items()}
    return splits.train, splits.validation, test, splits.class_names, shapes, splits.vectorizer


def only(dataset, keys):
    return dataset.map(lambda x, y: ({key: x[key] for key in keys}, y))


def as_arrays(dataset):
    """``({key: array}, labels)`` of a batched dataset."""
    import numpy as np

    xs, ys = {}, []
    for x, y in dataset.as_numpy_iterator():
        for key, value in x.items():
            xs.setdefault(key, []).append(value)
        ys.append(y)
    return {key: np.concatenate(values) for key, values in xs.items()}, np.concatenate(ys)


# --- the baseline --------------------------------------------------------------------------


def baseline_features(x, vocabulary_size):
    """Per modality, what a linear model reads: pixels, MFCC means and deviations, word counts."""
    import librosa
    import numpy as np

    features = {"image": x["image"].reshape(len(x["image"]), -1)}
    mfcc = np.stack([librosa.feature.mfcc(y=clip, sr=16000, n_mfcc=20) for clip in x["audio"]])
    features["audio"] = np.concatenate([mfcc.mean(axis=-1), mfcc.std(axis=-1)], axis=1)
    counts = np.zeros((len(x["text"]), vocabulary_size), "float32")
    for row, tokens in enumerate(x["text"]):
        for token in tokens[tokens > 0]:
            counts[row, token] += 1
    features["text"] = counts
    return features


C_GRID = (0.001, 0.01, 0.1, 1.0)


def _fit_best(xs, ys, seed):
    """The logistic regression whose ``C`` scores best on the validation split: ``(C, model)``."""
    from sklearn.linear_model import LogisticRegression

    best = None
    for c in C_GRID:
        model = LogisticRegression(C=c, max_iter=3000, random_state=seed).fit(xs[0], ys[0])
        score = model.score(xs[1], ys[1])
        if best is None or score > best[0]:
            best = (score, c, model)
    return best[1], best[2]


def logistic_regressions(train, validation, test, seed):
    """Test accuracies of logistic regressions on each modality and on all of them.

    Pixels and MFCC statistics are standardised, word counts kept as they are; each
    modality's ``C`` is chosen on the validation split.
    All modalities together: the better, on the validation split, of (a) the product of the
    single-modality models' probabilities (late fusion) and (b) one model on the
    concatenated blocks, each scaled by the square root of its own chosen ``C`` (a plain
    concatenation lets the 2,304 pixels swamp the rest: about 0.5 on the check set).
    """
    import numpy as np
    from sklearn.preprocessing import StandardScaler

    ys = [train[1], validation[1], test[1]]
    blocks, chosen, probabilities, accuracy = {}, {}, {}, {}
    for key in MODALITIES:
        if key == "text":  # word counts as they are (standardising rare words blows them up)
            blocks[key] = [split[0][key] for split in (train, validation, test)]
        else:
            scaler = StandardScaler().fit(train[0][key])
            blocks[key] = [scaler.transform(split[0][key]) for split in (train, validation, test)]
        chosen[key], model = _fit_best(blocks[key], ys, seed)
        probabilities[key] = [model.predict_proba(x) for x in blocks[key][1:]]
        accuracy[key] = float(model.score(blocks[key][2], ys[2]))
    late = [np.sum([np.log(probabilities[key][i] + 1e-12) for key in MODALITIES], axis=0) for i in (0, 1)]
    late_scores = [float((late[i].argmax(1) == ys[i + 1]).mean()) for i in (0, 1)]
    joined = [np.concatenate([blocks[key][i] * np.sqrt(chosen[key]) for key in MODALITIES], 1) for i in range(3)]
    _, model = _fit_best(joined, ys, seed)
    early_scores = [float(model.score(joined[i], ys[i])) for i in (1, 2)]
    accuracy["+".join(MODALITIES)] = late_scores[1] if late_scores[0] >= early_scores[0] else early_scores[1]
    return accuracy


# --- the runs ------------------------------------------------------------------------------


def fusion_run(train, validation, test, shapes, keys, fusion, num_classes, vocabulary_size, args):
    import keras

    import mmzoo

    keras.utils.set_random_seed(args.seed)
    history = mmzoo.train(
        "fusion_classifier",
        only(train, keys),
        validation_data=only(validation, keys),
        epochs=args.epochs,
        verbose=0,
        inputs={key: shapes[key] for key in keys},
        num_classes=num_classes,
        fusion=fusion,
        vocabulary_size=vocabulary_size,
    )
    model = history.model
    accuracy = model.evaluate(only(test, keys), verbose=0, return_dict=True)["accuracy"]
    return float(accuracy), len(history.epoch)


def measure(args, log=print):
    started = time.perf_counter()
    train, validation, test, class_names, shapes, vectorizer = load(args)
    vocabulary_size = vectorizer.vocabulary_size()
    log(f"data: {len(class_names)} classes, inputs {shapes}, vocabulary {vocabulary_size} "
        f"({time.perf_counter() - started:.0f} s to index)")
    results = []

    def record(name, accuracy, seconds, epochs=None):
        results.append({"name": name, "accuracy": round(accuracy, 4), "seconds": round(seconds, 1), "epochs": epochs})
        log(f"{name:<42} accuracy {accuracy:.4f}  {seconds:7.1f} s" + (f"  ({epochs} epochs)" if epochs else ""))

    start = time.perf_counter()
    arrays = [as_arrays(split) for split in (train, validation, test)]
    features = [(baseline_features(x, vocabulary_size), y) for x, y in arrays]
    prepared = time.perf_counter() - start
    start = time.perf_counter()
    baselines = logistic_regressions(*features, args.seed)
    for keys, accuracy in baselines.items():
        record(f"logistic regression: {keys}", accuracy, time.perf_counter() - start + prepared)
    for key in MODALITIES:
        start = time.perf_counter()
        accuracy, epochs = fusion_run(train, validation, test, shapes, (key,), "concat", len(class_names),
                                      vocabulary_size, args)
        record(f"fusion_classifier: {key} only", accuracy, time.perf_counter() - start, epochs)
    for fusion in args.fusions.split(","):
        start = time.perf_counter()
        accuracy, epochs = fusion_run(train, validation, test, shapes, MODALITIES, fusion, len(class_names),
                                      vocabulary_size, args)
        record(f"fusion_classifier: {fusion} fusion", accuracy, time.perf_counter() - start, epochs)
    return results


def summary(results):
    """The two targets: fused vs the logistic regression, and fused vs the best single modality."""
    accuracy = {row["name"]: row["accuracy"] for row in results}
    fused = max(v for k, v in accuracy.items() if k.endswith("fusion"))
    baseline = accuracy["logistic regression: " + "+".join(MODALITIES)]
    single = max(accuracy[f"fusion_classifier: {key} only"] for key in MODALITIES)
    return {
        "best fused": fused,
        "logistic regression, all modalities": baseline,
        "best single modality": single,
        "margin over the logistic regression (points)": round(100 * (fused - baseline), 1),
        "margin over the best single modality (points)": round(100 * (fused - single), 1),
    }


def rows(results):
    """Rows for ``benchmarks/run.py``'s table: accuracy of each run against the fused logistic regression."""
    baseline = next(r["accuracy"] for r in results if r["name"] == "logistic regression: " + "+".join(MODALITIES))
    return [
        {"name": f"real_data: {r['name']}", "ours": r["accuracy"], "baseline": baseline, "unit": "accuracy",
         "ratio": round(r["accuracy"] / baseline, 3)}
        for r in results if not r["name"].startswith("logistic")
    ]


def main(argv=None):
    args = parse_args(argv)
    print(machine_line())
    results = measure(args)
    print()
    print(f"{'run':<42} {'test accuracy':>13} {'seconds':>8}")
    for row in results:
        print(f"{row['name']:<42} {row['accuracy']:>13.4f} {row['seconds']:>8.1f}")
    print(json.dumps(summary(results), indent=2))
    write_json(rows(results), args.output)
    return results


if __name__ == "__main__":
    main()
