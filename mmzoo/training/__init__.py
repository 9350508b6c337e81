"""Training: ``mmzoo.train`` and the custom distributed training loop.

``train(model_or_name, train_data, ...)`` is Keras ``fit`` with what a real run needs around it:

- **mixed precision**: ``mixed_precision="auto"`` trains in ``mixed_float16`` when a GPU is
  visible and in float32 on CPU; ``"mixed_bfloat16"``, ``"mixed_float16"`` and ``"float32"``
  can be forced. The model is built *after* the dtype policy is set (every output layer of
  an mmzoo model computes in float32, so outputs stay float32), Keras wraps the optimizer
  in a ``LossScaleOptimizer`` under ``mixed_float16``, and the previous global dtype policy
  is restored when ``train`` returns (or raises).
- **XLA**: ``jit_compile`` goes to ``compile``; ``"auto"`` is decided per model from what
  ``benchmarks/xla.py`` measured (:func:`resolve_jit_compile`): on a CPU, XLA for the
  models it sped up in every run (:data:`CPU_XLA_MODELS`) and for any model with a recurrent
  layer, not for the others (it slows convolutions); on a GPU and on JAX, Keras' own choice
  (XLA wherever every layer supports it). With ``jit_compile=True`` on a model that has a
  layer XLA cannot compile (``supports_jit=False``: lookup layers, an LSTM/GRU on the cuDNN
  kernel), ``train`` warns once, naming the layers and the XLA-friendly variant
  (``LSTM(use_cudnn=False)``), and trains without XLA.
- **distribution** on TensorFlow's own engine: ``strategy="mirrored"``
  (``tf.distribute.MirroredStrategy`` over every GPU, else every logical CPU device),
  ``strategy="multi_worker"`` (``MultiWorkerMirroredStrategy`` from ``TF_CONFIG``), or any
  ``tf.distribute.Strategy``. Keras 3 ``fit`` fails under ``MultiWorkerMirroredStrategy``
  (keras-team/keras#20585, "Attempt to convert a value (PerReplica...)"), so multi-worker
  runs train with :func:`distributed_fit`, a custom distributed step.
- **faults**: with ``checkpoint_dir``, ``BackupAndRestore`` (``checkpoint_dir/backup``) lets
  a run killed mid-way resume from its last finished epoch when started again, and
  ``ModelCheckpoint`` keeps the best model in ``checkpoint_dir/best.keras`` (on
  ``val_loss``, or ``loss`` without validation data). Both write through a temporary
  name and a rename (:mod:`mmzoo.checkpoints`), so a kill during a save never leaves a
  half-written backup or checkpoint. A NaN or infinite loss always stops
  the run (``TerminateOnNaN``) and ``train`` raises :class:`TrainingDivergedError`,
  naming the epoch and batch; the backup of the last finished epoch is then kept (never
  overwritten by NaN weights), so the run can be started again from it.
- ``tensorboard_dir`` adds ``TensorBoard``; Keras progress bars follow ``verbose``, and a
  table of the last epoch's training and validation metrics is printed at the end.
- The data is checked before anything trains: the dataset's input keys must be the
  model's (a clear error names the missing and extra keys), batched, of the model's shapes.

:func:`distributed_fit` is also the corrected form of document 004 §4.3's training loop
(see :mod:`mmzoo.training.distributed`).

The package, one concern a file, each reading top to bottom:

- :mod:`~mmzoo.training.precision`: the dtype policy, XLA;
- :mod:`~mmzoo.training.strategy`: distribution strategies, the chief worker;
- :mod:`~mmzoo.training.data_checks`: the data checked against the model, build arguments
  from a folder's splits, input statistics adapted;
- :mod:`~mmzoo.training.callbacks`: the recipe, checkpoints and backups, divergence;
- :mod:`~mmzoo.training.fit`: :func:`train`;
- :mod:`~mmzoo.training.distributed`: :func:`distributed_fit`;
- :mod:`~mmzoo.training.finetune`: :func:`freeze`, :func:`finetune`.

Example:
>>> import mmzoo
>>> from mmzoo.data import synthetic
>>> history = mmzoo.train(
...     "mlp", lambda model: synthetic(model, n=64, batch_size=16), epochs=2,
...     verbose=0, input_shape=(16,), units=8)
>>> len(history.history["loss"])
2
"""

from mmzoo.training.callbacks import TrainingDivergedError, metrics_table
from mmzoo.training.data_checks import adapt_inputs, check_data, split_build_arguments
from mmzoo.training.distributed import distributed_fit, replica_loss
from mmzoo.training.finetune import finetune, freeze, unfreeze
from mmzoo.training.fit import train
from mmzoo.training.precision import (
    CPU_XLA_MODELS,
    MIXED_PRECISION_CHOICES,
    gpu_visible,
    resolve_jit_compile,
    resolve_mixed_precision,
    xla_blockers,
)
from mmzoo.training.strategy import STRATEGY_CHOICES, chief_of, is_chief, multi_worker_strategy, resolve_strategy

__all__ = [
    "CPU_XLA_MODELS",
    "MIXED_PRECISION_CHOICES",
    "STRATEGY_CHOICES",
    "TrainingDivergedError",
    "adapt_inputs",
    "check_data",
    "chief_of",
    "distributed_fit",
    "finetune",
    "freeze",
    "is_chief",
    "metrics_table",
    "multi_worker_strategy",
    "replica_loss",
    "gpu_visible",
    "resolve_jit_compile",
    "resolve_mixed_precision",
    "resolve_strategy",
    "split_build_arguments",
    "train",
    "unfreeze",
    "xla_blockers",
]
