"""Distribution: ``strategy="mirrored" | "multi_worker" | "data_parallel"``, a ``tf.distribute.Strategy``
or a ``keras.distribution.Distribution``, and who is chief.

On TensorFlow, ``"mirrored"`` and ``"multi_worker"`` are ``tf.distribute`` strategies. Keras
3 ``fit`` fails under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585), so
multi-worker runs train with :func:`mmzoo.training.distributed.distributed_fit`.

On JAX (the GPU machine, which has no TensorFlow), ``"data_parallel"`` is
``keras.distribution.DataParallel`` over every device JAX finds: the variables are
replicated, each batch is split across the devices, and the gradients are averaged, so a
step on a global batch gives the loss of one device on that batch. Any
``keras.distribution.Distribution`` (``ModelParallel`` too) is used as it is.
"""

import json
import os
import sys

import keras

STRATEGY_CHOICES = ("mirrored", "multi_worker", "data_parallel")

_multi_worker_strategy = None
_mirrored_strategies = {}


def multi_worker_strategy():
    """The process's ``tf.distribute.MultiWorkerMirroredStrategy``, created once from ``TF_CONFIG``.

    TensorFlow configures the collective ops of a multi-worker strategy only at program
    start-up, before any other TensorFlow work (building a model or a dataset). Call this
    first in a worker program, or let :func:`train` create it by giving it a model name
    and the data as a function of the model. Later calls return the same strategy.
    """
    global _multi_worker_strategy
    if _multi_worker_strategy is not None:
        return _multi_worker_strategy
    raw = os.environ.get("TF_CONFIG")
    try:
        config = json.loads(raw) if raw else None
    except json.JSONDecodeError:
        config = None
    if not isinstance(config, dict) or "cluster" not in config or "task" not in config:
        raise ValueError(
            "strategy='multi_worker' reads the cluster from the TF_CONFIG environment variable: "
            'a JSON object like {"cluster": {"worker": ["host1:port", "host2:port"]}, '
            '"task": {"type": "worker", "index": 0}}, set in each worker process. '
            f"Received: TF_CONFIG={raw!r}"
        )
    import tensorflow as tf

    try:
        _multi_worker_strategy = tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as error:
        if "program startup" not in str(error):
            raise
        raise RuntimeError(
            "TensorFlow can only start a multi-worker strategy before any other TensorFlow "
            "work in the process. Call mmzoo.training.multi_worker_strategy() at the top of "
            "the worker program, or pass train() a model name and the data as a function of "
            "the model (train_data=lambda model: ...), so that train() creates the strategy "
            f"first. ({error})"
        ) from None
    return _multi_worker_strategy


def _is_tf_strategy(strategy):
    tf = sys.modules.get("tensorflow")
    return tf is not None and hasattr(tf, "distribute") and isinstance(strategy, tf.distribute.Strategy)


def is_keras_distribution(strategy):
    """Whether ``strategy`` is a ``keras.distribution.Distribution`` (JAX's data or model parallelism)."""
    from keras.src.distribution.distribution_lib import Distribution  # not exported by keras.distribution

    return isinstance(strategy, Distribution)


def resolve_strategy(strategy):
    """A ``tf.distribute.Strategy`` or ``keras.distribution.Distribution`` for ``strategy`` (None stays None).

    ``"mirrored"``: ``MirroredStrategy`` over every GPU, or over every logical CPU device
    when there is no GPU (two logical CPUs make two replicas on one machine), created once
    per process and reused;
    ``"multi_worker"``: :func:`multi_worker_strategy`;
    ``"data_parallel"`` (Keras on JAX): ``keras.distribution.DataParallel`` over every
    device of ``keras.distribution.list_devices()``;
    a ``tf.distribute.Strategy`` or a ``keras.distribution.Distribution`` is used as it is.
    Anything else, or a choice the Keras backend cannot run, raises ``ValueError``.
    """
    if strategy is None:
        return None
    backend = keras.backend.backend()
    if _is_tf_strategy(strategy):
        return strategy
    if is_keras_distribution(strategy) or strategy == "data_parallel":
        if backend != "jax":
            raise ValueError(
                "keras.distribution (strategy='data_parallel' or a Distribution) runs on Keras with "
                f"JAX (KERAS_BACKEND=jax); this Keras runs on {backend}. On TensorFlow use "
                f"strategy='mirrored'. Received: strategy={strategy!r}"
            )
        if strategy == "data_parallel":
            return keras.distribution.DataParallel(devices=keras.distribution.list_devices())
        return strategy
    if not isinstance(strategy, str) or strategy not in STRATEGY_CHOICES:
        raise ValueError(
            f"`strategy` must be None, one of {', '.join(map(repr, STRATEGY_CHOICES))}, a "
            f"tf.distribute.Strategy or a keras.distribution.Distribution. Received: strategy={strategy!r}"
        )
    if backend != "tensorflow":
        raise ValueError(
            f"strategy={strategy!r} is a tf.distribute strategy: it needs Keras on TensorFlow; this "
            f"Keras runs on {backend}. On JAX use strategy='data_parallel'."
        )
    import tensorflow as tf

    if strategy == "multi_worker":
        return multi_worker_strategy()
    gpus = tf.config.list_logical_devices("GPU")
    devices = tuple(d.name for d in gpus) or tuple(d.name for d in tf.config.list_logical_devices("CPU"))
    # One strategy per device set and process: TensorFlow's collective instance keys restart
    # with each new strategy, and can clash with those of an earlier one.
    if devices not in _mirrored_strategies:
        _mirrored_strategies[devices] = tf.distribute.MirroredStrategy(list(devices))
    return _mirrored_strategies[devices]


def is_multi_worker(strategy):
    """Whether ``strategy`` is a ``MultiWorkerMirroredStrategy`` (trained by :func:`distributed_fit`)."""
    if not _is_tf_strategy(strategy):
        return False
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy):
    """Whether this process writes the shared files (checkpoints, TensorBoard, the summary)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    cluster = resolver.cluster_spec().as_dict()
    if "chief" in cluster:
        return resolver.task_type == "chief"
    return resolver.task_type == "worker" and (resolver.task_id or 0) == 0


def is_default(strategy):
    """Whether ``strategy`` is TensorFlow's default (no distribution) strategy."""
    return type(strategy).__name__ == "_DefaultDistributionStrategy"


def task_index(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    return (resolver.task_id or 0) if resolver is not None else 0



def chief_of(strategy):
    """True where this process writes and reports (no strategy, or the chief worker)."""
    return strategy is None or is_chief(strategy)



class null_scope:
    """A do-nothing context manager: the scope when there is no strategy."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def scope_of(strategy):
    """``strategy.scope()`` (a strategy's or a Keras distribution's), or a do-nothing scope for None."""
    return strategy.scope() if strategy is not None else null_scope()


__all__ = [
    "STRATEGY_CHOICES", "chief_of", "is_chief", "is_default", "is_keras_distribution", "is_multi_worker",
    "multi_worker_strategy",
    "resolve_strategy", "scope_of", "task_index",
]
