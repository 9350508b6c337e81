"""The custom distributed training loop: :func:`distributed_fit`.


:func:`distributed_fit` is also the corrected form of document 004 §4.3's training loop,
which mixed a ``train_on_batch`` loop with ``fit`` and gave ``fit`` a ``batch_size`` for a
dataset: one ``tf.function`` step that runs ``strategy.run`` on each replica's part of the
batch, averages the per-example losses over the *global* batch
(``tf.nn.compute_average_loss``), and lets the Keras optimizer all-reduce and apply the
gradients. With no strategy it runs on the default strategy and gives the same weights as
"""

import keras

from mmzoo.training.strategy import is_default, is_multi_worker


def _loss_spec(model):
    """``{output key or None: (loss function, weight)}`` from the model's compiled loss."""
    loss = getattr(model, "loss", None)
    config = getattr(model, "_compile_config", None)
    weights = dict(config.config).get("loss_weights") if config is not None else None
    names = list(getattr(model, "output_names", None) or [])
    if loss is None:
        return {}
    if isinstance(loss, dict):
        pairs = [(key, value) for key, value in loss.items() if value is not None]
    elif isinstance(loss, (list, tuple)):
        pairs = [(name, value) for name, value in zip(names, loss) if value is not None]
    else:
        pairs = [(None, loss)]
    if isinstance(weights, (list, tuple)):
        weights = dict(zip(names, weights))
    spec = {}
    for key, value in pairs:
        function = keras.losses.get(value)
        if isinstance(function, keras.losses.Loss):
            function = function.call
        weight = 1.0
        if isinstance(weights, dict) and key in weights:
            weight = float(weights[key])
        elif isinstance(weights, (int, float)):
            weight = float(weights)
        spec[key] = (function, weight)
    return spec


def _per_example(function, y_true, y_pred):
    values = keras.ops.cast(function(y_true, y_pred), "float32")
    if len(values.shape) > 1:
        values = keras.ops.mean(values, axis=tuple(range(1, len(values.shape))))
    return values


def replica_loss(model, x, y, y_pred, sample_weight, global_batch_size):
    """One replica's share of the loss of a global batch, whose sum over replicas is the batch's mean loss.

    The per-example losses of the compiled loss (summed over outputs with their
    ``loss_weights``, times ``sample_weight``) go through ``tf.nn.compute_average_loss``
    with the *global* batch size, and regularisation losses through
    ``tf.nn.scale_regularization_loss``: the gradients the optimizer sums over replicas
    are then those of the global batch's mean loss. A model with its own
    ``compute_loss`` (a batch-level loss, e.g. contrastive) contributes its loss
    weighted by its share of the global batch.
    """
    import tensorflow as tf

    local = tf.cast(tf.shape(keras.tree.flatten(x)[0])[0], "float32")
    if type(model).compute_loss is not keras.Model.compute_loss:
        loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
        return tf.cast(loss, "float32") * local / global_batch_size
    spec = _loss_spec(model)
    if not spec:
        raise ValueError(f"{model.name!r} has no compiled loss: compile it with a loss first.")
    total = None
    for key, (function, weight) in spec.items():
        if key is None:
            y_true_k, y_pred_k = y, y_pred
            if isinstance(y_pred, dict) and len(y_pred) == 1:
                y_pred_k = next(iter(y_pred.values()))
            weight_k = sample_weight
        else:
            if y is None or key not in y:
                continue
            y_true_k = y[key]
            y_pred_k = y_pred[key] if isinstance(y_pred, dict) else y_pred
            weight_k = sample_weight.get(key) if isinstance(sample_weight, dict) else sample_weight
        values = _per_example(function, y_true_k, y_pred_k) * weight
        if weight_k is not None:
            values = values * tf.reshape(tf.cast(weight_k, "float32"), [-1])
        total = values if total is None else total + values
    loss = tf.nn.compute_average_loss(total, global_batch_size=tf.cast(tf.round(global_batch_size), "int64"))
    if model.losses:
        loss += tf.nn.scale_regularization_loss(tf.add_n([tf.cast(v, "float32") for v in model.losses]))
    return loss


def distributed_fit(
    model,
    dataset,
    epochs=1,
    strategy=None,
    validation_data=None,
    callbacks=(),
    initial_epoch=0,
    verbose="auto",
):
    """Train a compiled Keras model with a custom distributed step; a ``History`` of per-epoch losses.

    The corrected custom training loop of document 004 §4.3, and how
    :func:`train` runs multi-worker training (Keras 3 ``fit`` fails under
    ``MultiWorkerMirroredStrategy``, keras-team/keras#20585). Each step is one
    ``tf.function``: ``strategy.run`` runs the forward pass of each replica's part of
    the global batch under a ``GradientTape``, :func:`replica_loss` averages the
    per-example losses over the global batch size (``tf.nn.compute_average_loss``), the
    loss is scaled for mixed precision (``optimizer.scale_loss``; a no-op but under
    ``mixed_float16``), and the Keras optimizer all-reduces the gradients and applies
    them. The data goes through ``strategy.experimental_distribute_dataset``, so it must
    be batched with the global batch size (no ``batch_size`` argument, unlike the
    document's loop). With no strategy it runs on the default strategy, one replica, and
    reaches the same weights as ``model.fit`` on the same data.

    Keras callbacks get the epoch and batch hooks with ``{"loss": ...}`` (and
    ``"val_loss"``) logs: progress bars, ``History``, ``TerminateOnNaN``,
    ``BackupAndRestore`` (resuming from its epoch), ``ModelCheckpoint``,
    ``EarlyStopping`` (``model.stop_training``) work.

    Example:
    >>> import mmzoo
    >>> from mmzoo.data import synthetic
    >>> model = mmzoo.build("mlp", input_shape=(16,), units=8)
    >>> history = distributed_fit(model, synthetic(model, n=64, batch_size=16), epochs=2, verbose=0)
    >>> sorted(history.history)
    ['loss']

    Args:
        model: a compiled ``keras.Model`` (if not compiled, it is compiled with its
            ``default_compile_arguments()``), built in ``strategy``'s scope.
        dataset: a ``tf.data.Dataset`` batched with the global batch size, of
            ``(inputs, targets[, sample_weights])`` or inputs alone.
        epochs: the epoch to train up to (from ``initial_epoch``).
        strategy: a ``tf.distribute.Strategy``; None for the current one (the default
            strategy outside any scope).
        validation_data: a dataset like ``dataset``; adds ``val_loss``.
        callbacks: Keras callbacks.
        initial_epoch: the epoch to start from (``BackupAndRestore`` may move it on).
        verbose: 0 (silent), 1 or ``"auto"`` (progress bar), 2 (a line per epoch).

    Returns:
        A ``keras.callbacks.History``: ``history.history["loss"]`` (and ``"val_loss"``)
        per epoch, ``history.epoch`` the epochs this call trained.
    """
    import tensorflow as tf

    owner = getattr(model, "_distribute_strategy", None)
    strategy = strategy or owner or tf.distribute.get_strategy()
    if strategy is not owner and not (owner is None and is_default(strategy)):
        raise ValueError(
            f"{model.name!r} was not built in the scope of the strategy it is to be trained with: "
            "build (and compile) it inside `with strategy.scope():`."
        )
    with strategy.scope():
        if not getattr(model, "compiled", False) or model.optimizer is None:
            model.compile(**model.default_compile_arguments())
        optimizer = model.optimizer
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
    variables = model.trainable_variables

    def replica_size(batch):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(batch)
        return tf.cast(tf.shape(keras.tree.flatten(x)[0])[0], "float32")

    def replica_train(batch, global_batch):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(batch)
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = replica_loss(model, x, y, y_pred, sample_weight, global_batch)
            scaled = optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, variables)
        optimizer.apply_gradients(zip(gradients, variables))  # all-reduces (sums) them over replicas
        return loss

    def replica_test(batch, global_batch):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(batch)
        y_pred = model(x, training=False)
        return replica_loss(model, x, y, y_pred, sample_weight, global_batch)

    multi_worker = is_multi_worker(strategy)

    def global_sum(per_replica):
        # Across workers a collective; on one machine the local results are all of them,
        # and adding them needs none (TensorFlow's collective keys can clash between two
        # strategies of one process).
        if multi_worker:
            return strategy.reduce("SUM", per_replica, axis=None)
        return tf.add_n(list(strategy.experimental_local_results(per_replica)))

    def reduced(step):
        @tf.function(reduce_retracing=True)
        def run(batch):
            global_batch = global_sum(strategy.run(replica_size, args=(batch,)))
            loss = strategy.run(step, args=(batch, global_batch))
            return global_sum(loss), global_batch

        return run

    train_step, test_step = reduced(replica_train), reduced(replica_test)
    train_batches = strategy.experimental_distribute_dataset(dataset)
    validation_batches = (
        strategy.experimental_distribute_dataset(validation_data) if validation_data is not None else None
    )
    cardinality = int(dataset.cardinality())
    steps = cardinality if cardinality > 0 else None

    callback_list = keras.callbacks.CallbackList(
        list(callbacks),
        add_history=True,
        add_progbar=verbose != 0,
        model=model,
        verbose=verbose,
        epochs=epochs,
        steps=steps,
    )

    def mean_loss(batches, step, on_batch=None):
        total, count = 0.0, 0.0
        for index, batch in enumerate(batches):
            if on_batch is not None:
                callback_list.on_train_batch_begin(index)
            loss, size = step(batch)
            loss, size = float(loss), float(size)
            total, count = total + loss * size, count + size
            if on_batch is not None:
                on_batch(index, {"loss": total / count})
                if model.stop_training:
                    break
        return total / count if count else float("nan")

    model.stop_training = False
    with strategy.scope():
        callback_list.on_train_begin()
        start = getattr(model, "_initial_epoch", None) or initial_epoch
        model._initial_epoch = None
        logs = {}
        for epoch in range(start, epochs):
            callback_list.on_epoch_begin(epoch)
            logs = {"loss": mean_loss(train_batches, train_step, callback_list.on_train_batch_end)}
            if validation_batches is not None and not model.stop_training:
                logs["val_loss"] = mean_loss(validation_batches, test_step)
            callback_list.on_epoch_end(epoch, logs)
            if model.stop_training:
                break
        callback_list.on_train_end(logs)
    return callback_list._history




__all__ = ["distributed_fit", "replica_loss"]
