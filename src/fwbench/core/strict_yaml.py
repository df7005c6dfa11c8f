"""The one YAML reader of every file fwbench reads: safe, strict and bounded.

YAML 1.2 floats (``5e-4`` and ``1e3`` are numbers, not the strings PyYAML would make of them); a
key given twice in one mapping is an error (not "the last wins"); aliases (``*name``) may not
expand a document beyond a small multiple of its own size (no alias bomb), checked on the
composed document before anything is built.
"""

from __future__ import annotations

import re
from typing import Any

import yaml


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, strict and bounded: YAML 1.2 floats (``5e-4`` and ``1e3`` are
    numbers), a key given twice in one mapping is an error (not "the last wins"), and aliases
    (``*name``) may not expand a document beyond a small multiple of its own size (no alias
    bomb: :func:`parse_yaml` checks before anything is built)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: PyYAML's own error follows
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key}' is given twice", key_node.start_mark
                )
        return super().construct_mapping(node, deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


# Aliases may repeat values, but the document they expand to holds at most this many values
# per value written, plus a little: a normal file is far below it, an alias bomb far above.
_EXPANSION_FACTOR, _EXPANSION_SLACK = 10, 1000


def _expanded_size(root: yaml.Node) -> tuple[int, int]:
    """``(values written, values after expanding every alias)`` of a composed document."""
    sizes: dict[int, int] = {}
    order: list[yaml.Node] = []
    stack, seen = [root], set()
    while stack:  # children before parents, each node once (aliases share their node)
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        order.append(node)
        if isinstance(node, yaml.MappingNode):
            stack.extend(n for pair in node.value for n in pair)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    for node in reversed(order):
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        else:
            children = []
        sizes[id(node)] = 1 + sum(sizes.get(id(c), 1) for c in children)
    return len(order), sizes[id(root)]


def parse_yaml(text: str) -> Any:
    """Parse YAML text (safe; YAML 1.2 number rules; no duplicate keys; aliases bounded)."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        written, expanded = _expanded_size(node)
        if expanded > _EXPANSION_FACTOR * written + _EXPANSION_SLACK:
            raise yaml.composer.ComposerError(
                None,
                None,
                f"aliases (*name) expand {written} values to {expanded}; the limit is "
                f"{_EXPANSION_FACTOR * written + _EXPANSION_SLACK}",
                node.start_mark,
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()
