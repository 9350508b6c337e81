"""Retrieval metrics: recall@K in both directions between two paired sets of embeddings."""

import numpy as np
from keras import ops


def _as_matrix(name, value):
    array = np.asarray(ops.convert_to_numpy(value), dtype=np.float64)
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(f"`{name}` must be a non-empty 2-D matrix. Received: {name} of shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"`{name}` must be finite. Received: {name} with NaN or infinite values")
    return array


def cosine_similarity(a, b):
    """``(n, m)`` cosine similarities between the rows of ``a`` ``(n, d)`` and of ``b`` ``(m, d)``."""
    a, b = _as_matrix("a", a), _as_matrix("b", b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"`a` and `b` must have the same width. Received: shapes {a.shape} and {b.shape}")
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a @ b.T


def _hits(similarity, k_values):
    """Fraction of rows whose diagonal entry ranks within the top k, for each k.

    The rank of the matching item counts every other candidate at least as similar
    (ties count against the query), so a constant similarity matrix scores 0, not 1.
    """
    true = np.diagonal(similarity)[:, None]
    others = similarity >= true
    np.fill_diagonal(others, False)
    ranks = others.sum(axis=1)
    return {k: float(np.mean(ranks < k)) for k in k_values}


def recall_at_k(a, b=None, k=(1, 5, 10), names=("a", "b")):
    """Recall@K of cross-modal retrieval, in both directions.

    Item ``i`` of one modality matches item ``i`` of the other. Querying with ``a_i``
    ranks every ``b_j`` by similarity; the query is a hit at K when ``b_i`` is among
    the K best (ties with ``b_i`` count against it). Recall@K is the fraction of hits.
    Both directions are returned: ``a`` queries ranking ``b`` and ``b`` queries ranking ``a``.

    Args:
        a: ``(n, d)`` embeddings of ``n`` items in the first modality, or, when ``b`` is
            None, an ``(n, n)`` similarity matrix with ``a[i, j]`` the similarity of item
            ``i`` of the first modality and item ``j`` of the second. NumPy arrays or tensors.
        b: ``(n, d)`` embeddings of the same ``n`` items in the second modality, row ``i``
            paired with row ``i`` of ``a``. Similarity is the cosine (embeddings are
            L2-normalised first).
        k: one K or a sequence of them.
        names: the names of the two modalities, used in the result's keys.

    Returns:
        A dict ``{"<a>_to_<b>@<K>": recall, "<b>_to_<a>@<K>": recall}`` of floats in [0, 1];
        chance level is ``K / n``.

    Example:
    >>> import numpy as np
    >>> recall_at_k(np.eye(3), k=1)
    {'a_to_b@1': 1.0, 'b_to_a@1': 1.0}
    >>> text = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> image = np.array([[1.0, 0.0], [0.8, 0.6]])
    >>> recall_at_k(text, image, k=1, names=("text", "image"))
    {'text_to_image@1': 1.0, 'image_to_text@1': 0.5}
    """
    k_values = [k] if isinstance(k, int) else list(k)
    if not k_values or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in k_values):
        raise ValueError(f"`k` must be a positive integer or a sequence of them. Received: k={k!r}")
    if not (isinstance(names, (list, tuple)) and len(names) == 2 and all(isinstance(n, str) for n in names)):
        raise ValueError(f"`names` must be two strings. Received: names={names!r}")
    if b is None:
        similarity = _as_matrix("a", a)
        if similarity.shape[0] != similarity.shape[1]:
            raise ValueError(
                "Without `b`, `a` must be a square similarity matrix. "
                f"Received: a of shape {similarity.shape}"
            )
    else:
        a_matrix, b_matrix = _as_matrix("a", a), _as_matrix("b", b)
        if a_matrix.shape[0] != b_matrix.shape[0]:
            raise ValueError(
                "`a` and `b` must hold the same number of paired items. "
                f"Received: a of shape {a_matrix.shape}, b of shape {b_matrix.shape}"
            )
        similarity = cosine_similarity(a_matrix, b_matrix)
    first, second = names
    result = {f"{first}_to_{second}@{key}": value for key, value in _hits(similarity, k_values).items()}
    result.update({f"{second}_to_{first}@{key}": value for key, value in _hits(similarity.T, k_values).items()})
    return result


__all__ = ["cosine_similarity", "recall_at_k"]
