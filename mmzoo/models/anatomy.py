"""The parts of a functional model that fine-tuning works on: each input's encoder, and the head.

Read from the model's graph, so that every zoo model has them without code of its own:

- the **encoder** of an input is every layer (with weights) that depends on that input
  alone, the head excepted: what it computes is a function of that modality only;
- the **head** is the layer with weights nearest to each targeted output (the classifier
  a head swap re-initialises for another number of classes).

Layers that mix several inputs (fusion, attention across modalities) belong to neither:
they are trained with the head when the encoders are frozen.

Example:
>>> import mmzoo
>>> model = mmzoo.build("concat_fusion")
>>> sorted(encoders(model))
['image_input', 'text_input']
>>> head(model).name
'output'
"""


def _operation_of(tensor):
    history = getattr(tensor, "_keras_history", None)
    return (history.operation, history.node_index) if history is not None else (None, None)


def _input_names(model):
    """``{id(input tensor): input name}``."""
    inputs = model.input
    if isinstance(inputs, dict):
        return {id(tensor): key for key, tensor in inputs.items()}
    tensors = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    return {id(tensor): getattr(tensor, "name", f"input_{i}") for i, tensor in enumerate(tensors)}


def input_dependencies(model):
    """``{layer: frozenset of the input names it depends on}`` for the layers of a functional model."""
    depends = {id_: frozenset([name]) for id_, name in _input_names(model).items()}
    layers = {}
    for operation in model._operations:  # in topological order, inputs first
        for node in operation._inbound_nodes:
            tensors = list(node.input_tensors)
            if not tensors or not all(id(t) in depends for t in tensors):
                continue  # a node of another graph (a shared layer called elsewhere)
            found = frozenset().union(*(depends[id(t)] for t in tensors))
            for tensor in node.output_tensors:
                depends[id(tensor)] = found
            layers[operation] = layers.get(operation, frozenset()) | found
    return layers


def encoders(model):
    """``{input name: [layers with weights that depend on that input alone]}``, in graph order.

    The head is never part of an encoder (in a one-input model everything else is). An
    input without such layers (e.g. a mask read directly by a fusion layer) is left out.
    """
    found, the_head = {}, {id(layer) for layer in head_layers(model)}
    for layer, names in input_dependencies(model).items():
        if len(names) == 1 and getattr(layer, "weights", None) and id(layer) not in the_head:
            found.setdefault(next(iter(names)), []).append(layer)
    return found


def _weighted_producer(tensor):
    """The layer with weights that makes ``tensor``, looking through weightless single-input layers
    (and presence gates).

    None when there is none, or when it is a whole nested model (a backbone whose output is
    the model's, as in a feature extractor: no head to swap).
    """
    import keras

    from mmzoo.layers.pooling import PresenceGate

    operation, node_index = _operation_of(tensor)
    while operation is not None and not getattr(operation, "weights", None):
        node = operation._inbound_nodes[node_index]
        inputs = list(node.input_tensors)
        if isinstance(operation, PresenceGate):  # a missing modality's zeros (missing_modalities=True)
            inputs = inputs[:1]
        if len(inputs) != 1:
            return None
        operation, node_index = _operation_of(inputs[0])
    return None if isinstance(operation, keras.Model) else operation


def head(model):
    """The layer (with weights) that makes each targeted output: one layer, or ``{output: layer}``.

    ``None`` where an output has no such layer (it is computed from others without weights).
    """
    outputs = model.output
    targets = getattr(model, "targets", None)
    if isinstance(outputs, dict):
        keys = [k for k in outputs if not isinstance(targets, dict) or targets.get(k) is not None]
        return {key: _weighted_producer(outputs[key]) for key in keys}
    if isinstance(outputs, (list, tuple)):
        return [_weighted_producer(tensor) for tensor in outputs]
    return _weighted_producer(outputs)


def head_layers(model):
    """``head(model)`` as a list of layers."""
    found = head(model)
    found = list(found.values()) if isinstance(found, dict) else (found if isinstance(found, list) else [found])
    return [layer for layer in found if layer is not None]


__all__ = ["encoders", "head", "head_layers", "input_dependencies"]
