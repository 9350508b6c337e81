"""``missing_modalities=True`` for every multimodal model: ``<modality>_present`` inputs, read from the graph.

A model built with ``missing_modalities=True`` takes, besides its own inputs, one float
input per modality named ``<modality>_present`` of shape ``(batch,)``: 1.0 where the example
has the modality, 0.0 where it is missing. A missing modality then contributes nothing:
every output is the same whatever its input holds.

No model writes code for it. :func:`add_presence_inputs` reads the model's graph and
finds, for each modality, the tensors where its own computation ends: the tensors that
depend on that modality alone and enter a layer that mixes modalities (a fusion), or are
outputs. Those are zeroed where the modality is missing (:class:`PresenceGate`), and a fusion
layer of :mod:`mmzoo.layers.fusion` that receives one such vector per modality also gets
the flags, so that it renormalises over the present ones (a weighted sum's weights, a
gate's softmax). Layers that mix modality *tokens* (attention over a stacked sequence) see
a missing modality as a zero token.

The modalities are the input names, less an ``_input`` suffix (``image_input`` is
``image``); an input ``K_mask`` belongs to ``K`` (its padding mask).

The same gates give every multimodal model ``modality_dropout=p``: while training, a
:class:`ModalityDropout` drops each (present) modality of each example with probability
``p`` (never an example's last one) by turning its flag to 0; at inference it does nothing.

Example:
>>> import mmzoo
>>> model = mmzoo.build("concat_fusion", missing_modalities=True)
>>> sorted(model.input)
['image_input', 'image_present', 'text_input', 'text_present']
"""

import keras
from keras import tree

from keras import layers

from mmzoo.layers.fusion import ModalityDropout, ModalityFusion
from mmzoo.layers.pooling import AllPresent, PresenceGate

PRESENT_SUFFIX = "_present"


def modality_of_input(key, names):
    """The modality an input belongs to: ``K`` for ``K_mask`` (when ``K`` is an input), less ``_input``."""
    if key.endswith("_mask") and key[: -len("_mask")] in names:
        key = key[: -len("_mask")]
    return key[: -len("_input")] if key.endswith("_input") else key


def modalities_of(input_names):
    """``{input name: modality}`` for a model's inputs (see :func:`modality_of_input`)."""
    names = set(input_names)
    return {key: modality_of_input(key, names) for key in input_names}


def is_presence_flag(key, shape):
    """Whether an input (its shape without the batch) is a ``<modality>_present`` flag, not a modality."""
    return str(key).endswith(PRESENT_SUFFIX) and len(tuple(shape)) == 0


def presence_input_names(input_names):
    """The ``<modality>_present`` names for these inputs, in the order of the inputs."""
    ordered = list(dict.fromkeys(modalities_of(input_names).values()))
    return [f"{modality}{PRESENT_SUFFIX}" for modality in ordered]


def _graph_nodes(inputs, outputs):
    graph = keras.Function(inputs, outputs)
    by_depth = graph._nodes_by_depth
    return [node for depth in sorted(by_depth, reverse=True) for node in by_depth[depth]]


def add_presence_inputs(model_name, inputs, outputs, flags=True, modality_dropout=0.0):
    """``(inputs with the <modality>_present inputs added, outputs recomputed through presence gates)``.

    Args:
        model_name: named in errors.
        inputs: the model's dict of ``keras.Input`` tensors.
        outputs: its output tensors (any structure).
        flags: add the ``<modality>_present`` inputs (``missing_modalities=True``); False: every
            modality counts as present (for ``modality_dropout`` alone).
        modality_dropout: while training, the probability of dropping each modality of each
            example (0: none).

    Raises:
        ValueError: the model has one modality, or already has an input named like a flag.
    """
    if not isinstance(inputs, dict):
        raise ValueError(f"{model_name}: missing_modalities=True needs a model whose inputs are a dict of named inputs")
    groups = modalities_of(list(inputs))
    modalities = list(dict.fromkeys(groups.values()))
    if len(modalities) < 2:
        option = "missing_modalities=True" if flags else f"modality_dropout={modality_dropout}"
        raise ValueError(
            f"{model_name} takes one modality ({modalities[0]!r}): {option} needs a model of two "
            f"or more modalities. Received: {option}"
        )
    clash = [f"{m}{PRESENT_SUFFIX}" for m in modalities if f"{m}{PRESENT_SUFFIX}" in inputs]
    if clash:
        raise ValueError(f"{model_name} already has the input(s) {clash}; it handles missing modalities itself")
    if flags:
        present = {m: keras.Input((), name=f"{m}{PRESENT_SUFFIX}") for m in modalities}
        flag_inputs = {f"{m}{PRESENT_SUFFIX}": present[m] for m in modalities}
    else:
        flag_inputs = {}
        first = next(iter(inputs.values()))
        present = {m: AllPresent(name=f"{m}_all_present")(first) for m in modalities}
    if modality_dropout:
        columns = [layers.Reshape((1,), name=f"{m}_present_column")(present[m]) for m in modalities]
        _, kept = ModalityDropout(modality_dropout, name="modality_dropout")(
            columns, present=[present[m] for m in modalities]
        )
        present = dict(zip(modalities, kept))
    nodes = _graph_nodes(inputs, outputs)

    # Which modalities each tensor depends on, and where each modality's own computation ends:
    # it enters a layer that mixes modalities, or it is an output.
    depends = {id(tensor): frozenset([groups[key]]) for key, tensor in inputs.items()}

    def single(tensor):
        found = depends.get(id(tensor), frozenset())
        return next(iter(found)) if len(found) == 1 else None

    boundary = {}
    for node in nodes:
        if node.is_input:
            continue
        mixed = frozenset().union(*(depends.get(id(t), frozenset()) for t in node.input_tensors))
        if len(mixed) > 1:
            boundary.update({id(t): single(t) for t in node.input_tensors if single(t)})
        for tensor in node.outputs:
            depends[id(tensor)] = mixed
    boundary.update({id(t): single(t) for t in tree.flatten(outputs) if single(t)})

    gates = {}

    def gate(tensor, modality):
        gates[modality] = gates.get(modality, 0) + 1
        name = f"{modality}_missing_gate" + (f"_{gates[modality]}" if gates[modality] > 1 else "")
        return PresenceGate(name=name)(tensor, present[modality])

    rebuilt = {}
    for tensor in inputs.values():
        rebuilt[id(tensor)] = gate(tensor, boundary[id(tensor)]) if id(tensor) in boundary else tensor
    for node in nodes:
        if node.is_input:
            continue
        args, kwargs = node.arguments.fill_in(rebuilt)
        operation = node.operation
        if isinstance(operation, ModalityFusion) and args and "present" not in kwargs:
            fused = _flags_for(node.arguments.args[0], single, present)
            if fused is not None:
                kwargs = {**kwargs, "present": fused}
        result = operation(*args, **kwargs)
        for old, new in zip(node.outputs, tree.flatten(result)):
            rebuilt[id(old)] = gate(new, boundary[id(old)]) if id(old) in boundary else new
    new_outputs = tree.map_structure(lambda tensor: rebuilt[id(tensor)], outputs)
    return {**inputs, **flag_inputs}, new_outputs


def _flags_for(vectors, single, present):
    """One flag per fused vector when each is a different modality's own vector; else None."""
    vectors = list(vectors.values()) if isinstance(vectors, dict) else vectors
    if not isinstance(vectors, (list, tuple)):
        return None
    owners = [single(v) for v in vectors]
    if None in owners or len(set(owners)) != len(owners):
        return None
    return [present[owner] for owner in owners]


__all__ = ["add_presence_inputs", "is_presence_flag", "modalities_of", "modality_of_input", "presence_input_names"]
