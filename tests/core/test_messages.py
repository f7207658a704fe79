"""check_trees_match's messages on a model-sized tree: the first mismatching key path, what differs
there, and nothing of the rest of the tree."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import pytest

from mlax.experimental.core import check_trees_match

LAYERS = 17
"""GPT-2-like blocks of 12 leaves each: with two embeddings and the final norm, 208 leaves."""

MAX_MESSAGE = 400
"""A message longer than this would no longer read at a glance."""


class LayerNorm(NamedTuple):
    scale: jax.Array
    bias: jax.Array


@jax.tree_util.register_pytree_node_class
class Box:
    """A registered node of another kind than jax's own: its children and a static label."""

    def __init__(self, *children: Any, label: str = "box") -> None:
        self.children = children
        self.label = label

    def tree_flatten(self) -> tuple[tuple[Any, ...], str]:
        return self.children, self.label

    @classmethod
    def tree_unflatten(cls, label: str, children: tuple[Any, ...]) -> Box:
        return cls(*children, label=label)


def _leaf(dtype: Any = jnp.float32) -> jax.Array:
    return jnp.zeros((2,), dtype)


def _linear() -> dict[str, Any]:
    return {"w": _leaf(), "b": _leaf()}


def _norm() -> dict[str, Any]:
    return {"scale": _leaf(), "bias": _leaf()}


def _block() -> dict[str, Any]:
    return {
        "ln_1": _norm(),
        "attn": {"c_attn": _linear(), "c_proj": _linear()},
        "ln_2": _norm(),
        "mlp": {"c_fc": _linear(), "c_proj": _linear()},
    }


def _model() -> dict[str, Any]:
    return {"wte": _leaf(), "wpe": _leaf(), "h": [_block() for _ in range(LAYERS)], "ln_f": _norm()}


_DELETE = object()


def _edited(tree: Any, edits: dict[tuple[Any, ...], Any]) -> Any:
    """A copy of ``tree`` with the node at each path replaced by its value (deleted for _DELETE)."""
    for path, value in edits.items():
        tree = _replaced(tree, path, value)
    return tree


def _replaced(tree: Any, path: tuple[Any, ...], value: Any) -> Any:
    head, *rest = path
    copy = dict(tree) if isinstance(tree, dict) else list(tree)
    if rest:
        copy[head] = _replaced(tree[head], tuple(rest), value)
    elif value is _DELETE:
        del copy[head]
    else:
        copy[head] = value
    return copy


# (case, edits of gradients, edits of mu, the key path as keystr writes it, fragments of the message)
STRUCTURE_CASES = [
    (
        "missing key",
        {},
        {("h", 3, "mlp", "c_fc", "b"): _DELETE},
        "['h'][3]['mlp']['c_fc']",
        ["key 'b' is in gradients but not in mu"],
    ),
    (
        "extra key",
        {},
        {("h", 5, "attn", "bias"): _leaf()},
        "['h'][5]['attn']",
        ["key 'bias' is in mu but not in gradients"],
    ),
    (
        "missing and extra keys",
        {("h", 8, "ln_2", "bias"): _DELETE, ("h", 8, "ln_2", "shift"): _leaf()},
        {},
        "['h'][8]['ln_2']",
        ["key 'shift' is in gradients but not in mu", "key 'bias' is in mu but not in gradients"],
    ),
    (
        "many extra keys",
        {},
        {("h", 2, "mlp", f"adapter_{i:02}"): _leaf() for i in range(40)},
        "['h'][2]['mlp']",
        ["keys 'adapter_00', 'adapter_01', 'adapter_02', 'adapter_03', 'adapter_04' and 35 more"],
    ),
    (
        "different length",
        {("h", 0, "attn", "c_attn"): [_leaf(), _leaf(), _leaf()]},
        {("h", 0, "attn", "c_attn"): [_leaf(), _leaf()]},
        "['h'][0]['attn']['c_attn']",
        ["gradients has a list of 3 items", "mu has a list of 2 items"],
    ),
    (
        "list and tuple",
        {("h", 11, "mlp", "c_proj"): [_leaf(), _leaf()]},
        {("h", 11, "mlp", "c_proj"): (_leaf(), _leaf())},
        "['h'][11]['mlp']['c_proj']",
        ["gradients has a list of 2 items", "mu has a tuple of 2 items"],
    ),
    (
        "dict and tuple",
        {},
        {("h", 2, "ln_1"): (_leaf(), _leaf())},
        "['h'][2]['ln_1']",
        ["gradients has a dict with 2 keys ('bias', 'scale')", "mu has a tuple of 2 items"],
    ),
    (
        "named tuple and tuple",
        {("h", 4, "ln_1"): LayerNorm(_leaf(), _leaf())},
        {("h", 4, "ln_1"): (_leaf(), _leaf())},
        "['h'][4]['ln_1']",
        ["gradients has a NamedTuple LayerNorm with fields ('scale', 'bias')", "mu has a tuple"],
    ),
    (
        "leaf and subtree",
        {},
        {("h", 7, "attn", "c_attn", "w"): {"kernel": _leaf()}},
        "['h'][7]['attn']['c_attn']['w']",
        ["gradients has a leaf of shape (2,) and dtype float32", "mu has a dict with 1 key"],
    ),
    (
        "None and leaf",
        {("h", 1, "ln_2", "bias"): None},
        {},
        "['h'][1]['ln_2']['bias']",
        ["gradients has None", "mu has a leaf of shape (2,) and dtype float32"],
    ),
    (
        "registered node of another arity",
        {("h", 9, "mlp", "c_fc"): Box(_leaf(), _leaf())},
        {("h", 9, "mlp", "c_fc"): Box(_leaf())},
        "['h'][9]['mlp']['c_fc']",
        [
            "gradients has a node of type Box with 2 children",
            "mu has a node of type Box with 1 child",
        ],
    ),
    (
        "registered node of other static data",
        {("h", 6, "attn", "c_proj"): Box(_leaf(), label="rotary")},
        {("h", 6, "attn", "c_proj"): Box(_leaf(), label="learned")},
        "['h'][6]['attn']['c_proj']",
        ["static data is 'rotary'", "static data is 'learned'"],
    ),
    (
        "registered node and list",
        {("h", 10, "attn", "c_attn"): Box(_leaf(), _leaf())},
        {("h", 10, "attn", "c_attn"): [_leaf(), _leaf()]},
        "['h'][10]['attn']['c_attn']",
        ["gradients has a node of type Box with 2 children", "mu has a list of 2 items"],
    ),
    (
        "only the first of two differences",
        {("h", 12, "ln_1", "bias"): _DELETE},
        {("h", 15, "ln_1", "scale"): _DELETE},
        "['h'][12]['ln_1']",
        ["key 'bias' is in mu but not in gradients"],
    ),
]


def test_the_model_has_hundreds_of_leaves() -> None:
    assert len(jax.tree.leaves(_model())) == 208


@pytest.mark.parametrize(
    ("first_edits", "second_edits", "path", "fragments"),
    [case[1:] for case in STRUCTURE_CASES],
    ids=[case[0] for case in STRUCTURE_CASES],
)
def test_a_structure_mismatch_names_the_first_key_path_and_what_differs_there(
    first_edits: dict[tuple[Any, ...], Any],
    second_edits: dict[tuple[Any, ...], Any],
    path: str,
    fragments: list[str],
) -> None:
    first, second = _edited(_model(), first_edits), _edited(_model(), second_edits)
    with pytest.raises(ValueError) as error:
        check_trees_match(first, second, "gradients", "mu")
    message = str(error.value)
    assert message.startswith(f"gradients and mu differ in structure at {path}: "), message
    for fragment in fragments:
        assert fragment in message, message
    assert len(message) < MAX_MESSAGE, message


def test_a_root_that_differs_is_named_root() -> None:
    with pytest.raises(ValueError, match=r"^a and b differ in structure at <root>: a has a leaf"):
        check_trees_match(_leaf(), _model(), "a", "b")


def test_a_structure_mismatch_reads_the_same_at_trace_time() -> None:
    second = _edited(_model(), {("h", 7, "attn", "c_attn", "w"): {"kernel": _leaf()}})
    expected = (
        "gradients and mu differ in structure at ['h'][7]['attn']['c_attn']['w']: gradients has "
        "a leaf of shape (2,) and dtype float32, mu has a dict with 1 key ('kernel')."
    )
    with pytest.raises(ValueError) as eager:
        check_trees_match(_model(), second, "gradients", "mu")
    with pytest.raises(ValueError) as traced:
        jax.jit(lambda first: check_trees_match(first, second, "gradients", "mu"))(_model())
    assert str(eager.value) == str(traced.value) == expected


def test_a_dtype_mismatch_names_the_key_path_both_dtypes_and_the_cast() -> None:
    first = _edited(_model(), {("h", 6, "mlp", "c_proj", "w"): _leaf(jnp.float16)})
    with pytest.raises(TypeError) as error:
        check_trees_match(first, _model(), "gradients", "mu")
    message = str(error.value)
    assert message.startswith(
        "gradients and mu differ in dtype at ['h'][6]['mlp']['c_proj']['w']: "
        "gradients float16 and mu float32."
    ), message
    assert message.endswith(
        " cast gradients to the dtypes of mu: "
        "jax.tree.map(lambda x, like: x.astype(like.dtype), gradients, mu)."
    ), message
    assert len(message) < MAX_MESSAGE, message
