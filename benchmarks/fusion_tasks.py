"""Which fusion for which reason to fuse: every fusion operator on the embedded dataset's three tasks.

For each task of ``mmzoo.data.synthetic(..., task=...)`` (see :mod:`mmzoo.data.embedded`),
on ``--modalities`` feature vectors (``features_a``, ``features_b``, ``features_c``: each
shows a code as ``prototype[code] + N(0, 1)`` in ``--features`` dimensions):

- ``redundant``: every modality shows the class; each one is missing (all zeros) from an
  example with probability 0.25;
- ``interaction``: each modality shows its own uniform code and the class is their sum
  modulo the classes (two classes: the parity of three bits), so that no modality, and no
  two of them, tell anything about the class;
- ``unreliable``: in each example one modality, drawn uniformly, shows the class; the
  others show a random class under extra ``N(0, 1.5**2)`` noise,

train ``--seeds`` seeds (the seed sets the weights and the data) of each fusion operator of
:data:`mmzoo.layers.fusion_names.FUSIONS`, and report the test accuracy as mean and
standard deviation over the seeds. Rows:

- ``FUSION``: ``fusion_classifier(inputs=..., fusion=FUSION, width=32, modality_dropout=0)``:
  an MLP encoder per input, the fusion, then its head (dropout, ``Dense(width, relu)``,
  dropout, softmax): a non-linear head;
- ``FUSION + linear head`` (on ``--linear-tasks``, the interaction task by default): the same
  encoders and fusion operator, then a single softmax ``Dense``: what the fusion itself
  can express. A sum of per-modality scores (an additive fusion followed by a linear
  head) cannot compute a parity, whatever the training;
- ``chance``: the frequency of the most frequent class of the test split;
- ``best possible``: the accuracy of the Bayes-optimal classifier on the same test
  examples, from the generative model (the prototypes, the noise levels, the task's
  rule): the ceiling of any classifier on this data.

Then the targets of issue 16, each with a PASS or FAIL line:

- interaction: concat with a linear head within 5 points of chance; at least two of the
  multiplicative, tensor and attention fusions (product, tensor, low_rank, gmu, film,
  attention, cross_attention) at 90% or more of the best possible accuracy (checked with
  fusion_classifier's head, and again with the linear head);
- unreliable: a gated fusion (gating, gmu, attention: per-example modality weights) beats
  the fixed-weight fusions (weighted, concat) by at least 3 points: the best gated mean
  against the best fixed-weight mean, with each head.

Each run trains with Adam (``--learning-rate``) in batches of ``--batch-size`` for
``--epochs`` epochs and is tested with its final weights. There is no early stopping: on
the interaction task the validation loss of a model that will learn the parity stays
flat, or even rises, for ten to forty epochs first, so early stopping ends runs that were
about to learn it. The accuracies are those of this budget (``--examples`` training
examples, ``--epochs`` epochs): a fusion that stays behind may catch up with more data or
more epochs. On the unreliable task it does: each modality's MLP encoder can learn to
silence its own corrupted inputs, so fixed weights suffice in the end, and the gated
fusions' lead is one of sample efficiency (``--tasks unreliable --seeds 1 --examples
8000 --fusions concat weighted attention gating``, measured: concat 0.957, weighted
0.954, attention 0.954, gating 0.963; with the default 2000 examples and 120 epochs:
0.900, 0.866, 0.943, 0.923). Models of one fusion and head are traced once and restarted from the initial
weights of each seed (see :class:`Trainer`).

    python benchmarks/fusion_tasks.py            # 3 seeds: 13 minutes on 2 quiet cores
    python benchmarks/fusion_tasks.py --quick    # 1 seed: about a third of that
    python benchmarks/fusion_tasks.py --linear-tasks interaction unreliable  # linear heads on both
    python benchmarks/fusion_tasks.py --tiny --fusions concat attention  # seconds: it runs, not what it measures
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from common import machine_line, write_json  # noqa: E402

TASKS = ("redundant", "interaction", "unreliable")
# Each modality is there with this probability: missing modalities are the redundant task's reason
# to fuse; the two others show their own reason alone.
RELIABILITY = {"redundant": 0.75, "interaction": 1.0, "unreliable": 1.0}
FUSIONS = ("concat", "weighted", "product", "attention", "graph", "gating", "tensor", "low_rank", "gmu", "film",
           "cross_attention")
MULTIPLICATIVE = ("product", "tensor", "low_rank", "gmu", "film", "attention", "cross_attention")
GATED = ("gating", "gmu", "attention")
FIXED_WEIGHTS = ("weighted", "concat")
DEFAULT_OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "fusion_tasks.json")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--fusions", nargs="+", choices=FUSIONS, default=list(FUSIONS))
    parser.add_argument("--linear-tasks", nargs="*", choices=TASKS, default=["interaction"],
                        help="the tasks on which each fusion also runs with a linear head (none: no linear heads)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per run (weights and data)")
    parser.add_argument("--examples", type=int, default=2000, help="training examples")
    parser.add_argument("--test-examples", type=int, default=2000)
    parser.add_argument("--modalities", type=int, default=3, help="feature-vector inputs (2 to 4)")
    parser.add_argument("--features", type=int, default=16, help="size of each feature vector")
    parser.add_argument("--classes", type=int, default=2)
    parser.add_argument("--width", type=int, default=32, help="fusion_classifier's width")
    parser.add_argument("--epochs", type=int, default=40, help="epochs of every run (no early stopping)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam's")
    parser.add_argument("--quick", action="store_true", help="1 seed")
    parser.add_argument("--tiny", action="store_true",
                        help="1 seed, 64 examples, 1 epoch, width 8: that it runs (the tests), not what it measures")
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help=f"rows as JSON (default {DEFAULT_OUTPUT})")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds = 1
    if args.tiny:
        args.seeds, args.examples, args.test_examples, args.epochs, args.width = 1, 64, 64, 1, 8
    for name in ("seeds", "examples", "test_examples", "features", "width", "epochs", "batch_size", "learning_rate"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if not 2 <= args.modalities <= 4:
        parser.error(f"--modalities must be 2, 3 or 4 (received {args.modalities})")
    if args.classes < 2:
        parser.error(f"--classes must be at least 2 (received {args.classes})")
    return args


def input_names(count):
    return [f"features_{chr(ord('a') + index)}" for index in range(count)]


# --- the models ----------------------------------------------------------------------------


def build(fusion, head, args):
    """``fusion_classifier`` (head ``mlp``), or its encoders and fusion with one softmax Dense (``linear``)."""
    import keras

    import mmzoo
    from mmzoo.layers.encoders import features_encoder
    from mmzoo.layers.fusion_names import apply_fusion

    shapes = {key: (args.features,) for key in input_names(args.modalities)}
    optimizer = keras.optimizers.Adam(args.learning_rate)
    if head == "mlp":
        model = mmzoo.build("fusion_classifier", inputs=shapes, fusion=fusion, num_classes=args.classes,
                            width=args.width, modality_dropout=0.0, compile=False)
        model.compile(**{**model.default_compile_arguments(), "optimizer": optimizer})
        return model
    inputs = {key: keras.Input(shape, name=key) for key, shape in shapes.items()}
    vectors = [features_encoder(shape[0], args.width, input_name=key, name=f"{key}_encoder")(inputs[key])
               for key, shape in shapes.items()]
    fused = apply_fusion(fusion, vectors, args.width, name="fusion")
    outputs = keras.layers.Dense(args.classes, activation="softmax", name="output")(fused)
    model = keras.Model(inputs, outputs, name=f"{fusion}_linear_head")
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def data(task, split, n, seed, args):
    """``(inputs, labels, latents)`` of the embedded dataset for the benchmark's inputs."""
    import mmzoo
    from mmzoo.data.embedded import _generate

    shapes = {key: (args.features,) for key in input_names(args.modalities)}
    shaped_like = mmzoo.build("fusion_classifier", inputs=shapes, num_classes=args.classes, width=4, compile=False)
    return _generate(shaped_like, n, split, seed, (), RELIABILITY[task], task)


class Trainer:
    """Trains one architecture (a fusion and a head) from fresh weights on each task and seed.

    Keras traces a model's training step on its first ``fit`` (seconds, more than the
    training itself at these sizes); the trainer builds the model once, and before each
    run gives it every variable of a model built under that run's seed (its weights, its
    input statistics adapted on that run's training split, its dropout layers' random
    state) and the optimizer's initial state, so that every run gives what a freshly built
    model would, whatever ran before it, without tracing again.
    """

    def __init__(self, fusion, head, args):
        self.fusion, self.head, self.args = fusion, head, args
        self.model = None

    def fresh(self, seed, x, y):
        import keras

        from mmzoo.layers.encoders import adapt_standardization

        keras.utils.set_random_seed(seed)
        model = build(self.fusion, self.head, self.args)
        adapt_standardization(model, [(x, y)])
        return model

    def run(self, seed, splits):
        """The test accuracy of a run from fresh weights (seed ``seed``) on ``splits`` (train, test)."""
        import keras

        (x, y, _), (x_test, y_test, _) = splits
        fresh = self.fresh(seed, x, y)
        if self.model is None:
            self.model = fresh
            self.model.optimizer.build(self.model.trainable_variables)
            self.optimizer_state = [variable.numpy() for variable in self.model.optimizer.variables]
        else:  # every variable: the weights, the input statistics, the dropout layers' random state
            for variable, value in zip(self.model.variables, fresh.variables):
                variable.assign(value)
            for variable, value in zip(self.model.optimizer.variables, self.optimizer_state):
                variable.assign(value)
        keras.utils.set_random_seed(seed)  # the order of the training examples
        self.model.fit(x, y, batch_size=self.args.batch_size, epochs=self.args.epochs, verbose=0)
        scores = self.model.evaluate(x_test, y_test, batch_size=1024, verbose=0, return_dict=True)
        return float(scores["accuracy"])


# --- the ceiling ---------------------------------------------------------------------------


def logsumexp(values, axis, keepdims=False):
    top = np.max(values, axis=axis, keepdims=True)
    total = top + np.log(np.sum(np.exp(values - top), axis=axis, keepdims=True))
    return total if keepdims else np.squeeze(total, axis=axis)


def _log_normal(x, mean, variance):
    """``log N(x; mean, variance I)`` summed over the last axis, up to a constant shared by all classes."""
    return -0.5 * np.sum((x - mean) ** 2, axis=-1) / variance - 0.5 * x.shape[-1] * np.log(variance)


def bayes_accuracy(task, x, labels, seed, args):
    """The accuracy of the Bayes-optimal classifier: the posterior of each class under the generative model.

    Each feature input ``m`` shows a code ``c`` as ``prototype_m[c] + N(0, 1)``; an absent one
    is all zeros; a corrupted one (``unreliable``) shows a uniform code with ``N(0, 1 + s**2)``
    noise (``s``: ``FEATURE_CORRUPTION_NOISE``).
    """
    from mmzoo.data.embedded import FEATURE_CORRUPTION_NOISE, _stable_seed

    keys = input_names(args.modalities)
    classes = args.classes
    likelihood, absent = {}, {}
    noisy = 1.0 + FEATURE_CORRUPTION_NOISE**2
    for key in keys:
        prototypes = np.random.default_rng(_stable_seed(seed, key, "prototypes")).normal(
            size=(classes, args.features)).astype(np.float32)
        values = x[key][:, None, :]
        absent[key] = ~x[key].any(axis=1)
        # log p(x_m | code c), clean and corrupted; an absent input tells nothing
        likelihood[key] = (_log_normal(values, prototypes[None], 1.0), _log_normal(values, prototypes[None], noisy))
    if task == "redundant":
        log_posterior = sum(np.where(absent[key][:, None], 0.0, likelihood[key][0]) for key in keys)
    elif task == "interaction":
        # p(label) = sum over codes adding up to it of prod_m p(c_m | x_m)
        code_posterior = [np.where(absent[key][:, None], 0.0, likelihood[key][0]) for key in keys]
        code_posterior = [np.exp(p - logsumexp(p, axis=1, keepdims=True)) for p in code_posterior]
        total = code_posterior[0]
        for p in code_posterior[1:]:
            total = np.stack([sum(total[:, a] * p[:, (s - a) % classes] for a in range(classes))
                              for s in range(classes)], axis=1)
        log_posterior = np.log(total + 1e-30)
    else:
        # sum over the clean input j: p(x_j | label) * prod_{m != j} mean_c p_noisy(x_m | c)
        clean = {key: np.where(absent[key][:, None], 0.0, likelihood[key][0]) for key in keys}
        decoy = {key: np.where(absent[key], 0.0, logsumexp(likelihood[key][1], axis=1) - np.log(classes))
                 for key in keys}
        terms = [clean[j] + sum(decoy[m] for m in keys if m != j)[:, None] for j in keys]
        log_posterior = logsumexp(np.stack(terms), axis=0)
    return float(np.mean(np.argmax(log_posterior, axis=1) == labels))


# --- the runs ------------------------------------------------------------------------------


def measure(args, log=print):
    """``{task: {"chance", "best possible", "runs": {row name: [test accuracy per seed]}}}``."""
    splits, results = {}, {}
    for task in args.tasks:
        chance, best = [], []
        for seed in range(args.seeds):
            started = time.perf_counter()
            splits[task, seed] = [data(task, split, n, seed, args) for split, n in
                                  (("train", args.examples), ("test", args.test_examples))]
            x_test, _, latents = splits[task, seed][1]
            counts = np.bincount(latents["labels"], minlength=args.classes)
            chance.append(float(counts.max() / counts.sum()))
            best.append(bayes_accuracy(task, x_test, latents["labels"], seed, args))
            log(f"{task}, seed {seed}: chance {chance[-1]:.4f}, best possible {best[-1]:.4f} "
                f"({time.perf_counter() - started:.1f} s for the data)")
        results[task] = {"chance": statistics.mean(chance), "best possible": statistics.mean(best), "runs": {}}
    for head, tasks in (("mlp", args.tasks), ("linear", [t for t in args.tasks if t in args.linear_tasks])):
        for fusion in args.fusions if tasks else ():
            name = fusion if head == "mlp" else f"{fusion} + linear head"
            trainer = Trainer(fusion, head, args)
            for task in tasks:
                started = time.perf_counter()
                for seed in range(args.seeds):
                    results[task]["runs"].setdefault(name, []).append(trainer.run(seed, splits[task, seed]))
                values = results[task]["runs"][name]
                log(f"{task:<12} {name:<30} " + " ".join(f"{v:.4f}" for v in values)
                    + f"  {time.perf_counter() - started:5.1f} s")
    return results


def mean_std(values):
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def table(results, seeds):
    """The results as a Markdown table: one row per fusion and head, one column per task."""
    tasks = list(results)
    names = list(dict.fromkeys(name for task in tasks for name in results[task]["runs"]))
    header = f"| fusion ({seeds} seed{'s' * (seeds > 1)}, test accuracy) | " + " | ".join(tasks) + " |"
    lines = [header, "|" + "---|" * (len(tasks) + 1)]
    for label in ("chance", "best possible"):
        lines.append(f"| {label} | " + " | ".join(f"{results[t][label]:.3f}" for t in tasks) + " |")
    for name in names:
        cells = []
        for task in tasks:
            values = results[task]["runs"].get(name)
            cells.append("-" if not values else "{:.3f} ± {:.3f}".format(*mean_std(values)))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets(results):
    """``[(target, passed or None when not measured, detail)]``: the issue's two targets."""
    checks = []
    if "interaction" in results:
        task = results["interaction"]
        runs, chance, best = task["runs"], task["chance"], task["best possible"]
        linear = runs.get("concat + linear head")
        if linear is None:
            checks.append(("interaction: concat + linear head within 5 points of chance", None, "not run"))
        else:
            mean = statistics.mean(linear)
            checks.append(("interaction: concat + linear head within 5 points of chance", abs(mean - chance) <= 0.05,
                           f"{mean:.3f} against chance {chance:.3f}"))
        for head, suffix in (("fusion_classifier's head", ""), ("linear head", " + linear head")):
            scores = {f: statistics.mean(runs[f + suffix]) for f in MULTIPLICATIVE if f + suffix in runs}
            if not scores:
                continue
            good = sorted(f for f, v in scores.items() if v >= 0.9 * best)
            checks.append((f"interaction: two or more multiplicative/tensor/attention fusions at >= 90% of the best "
                           f"possible ({head})", len(good) >= 2,
                           f"{len(good)} of {len(scores)} at >= {0.9 * best:.3f}: {', '.join(good) or 'none'}"))
    if "unreliable" in results:
        runs = results["unreliable"]["runs"]
        for head, suffix in (("fusion_classifier's head", ""), ("linear head", " + linear head")):
            gated = {f: statistics.mean(runs[f + suffix]) for f in GATED if f + suffix in runs}
            fixed = {f: statistics.mean(runs[f + suffix]) for f in FIXED_WEIGHTS if f + suffix in runs}
            if not gated or not fixed:
                continue
            g, f = max(gated, key=gated.get), max(fixed, key=fixed.get)
            checks.append((f"unreliable: a gated fusion beats every fixed-weight fusion by >= 3 points ({head})",
                           gated[g] - fixed[f] >= 0.03,
                           f"{g} {gated[g]:.3f} against {f} {fixed[f]:.3f}: {100 * (gated[g] - fixed[f]):+.1f} points"))
    return checks


def rows(results):
    """Rows for ``benchmarks/common.py``'s JSON: mean accuracy of each run against the best possible."""
    out = []
    for task, result in results.items():
        best = result["best possible"]
        for name, values in result["runs"].items():
            mean = statistics.mean(values)
            out.append({"name": f"fusion_tasks: {task}: {name}", "ours": round(mean, 4), "baseline": round(best, 4),
                        "unit": "accuracy", "ratio": round(mean / best, 3)})
    return out


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    print(machine_line())
    print(f"{args.modalities} feature inputs of {args.features}, {args.classes} classes, width {args.width}, "
          f"{args.examples} training examples, {args.test_examples} test, {args.epochs} epochs, "
          f"batch {args.batch_size}, Adam {args.learning_rate}, {args.seeds} seed(s)",
          flush=True)
    results = measure(args, log=lambda line: print(line, flush=True))
    print()
    print(table(results, args.seeds))
    print()
    checks = targets(results)
    for name, passed, detail in checks:
        print(f"{'PASS' if passed else 'FAIL' if passed is not None else 'SKIP'}: {name}: {detail}")
    write_json(rows(results), args.output)
    print(f"wrote {args.output} in {time.perf_counter() - started:.0f} s")
    return results, checks


if __name__ == "__main__":
    main()
