"""Strict YAML for policy files: safe types only, no anchors or aliases (so no "billion laughs"),
no duplicate keys, one document, bounded size and depth, floats read as exact decimals.

Every value keeps its line, so a schema error can name the line it came from."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_BYTES = 256 * 1024
MAX_DEPTH = 32


@dataclass(frozen=True)
class YamlProblem(Exception):
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


class _StrictLoader(yaml.SafeLoader):
    def compose_node(self, parent: Node | None, index: Any) -> Node:  # type: ignore[override]
        event = self.peek_event()
        line = event.start_mark.line + 1 if event.start_mark else None
        if isinstance(event, yaml.AliasEvent):
            raise YamlProblem(line, "aliases (*name) are not allowed in policy files")
        if getattr(event, "anchor", None):
            raise YamlProblem(line, "anchors (&name) are not allowed in policy files")
        if isinstance(event, yaml.ScalarEvent | yaml.SequenceStartEvent | yaml.MappingStartEvent):
            tag = event.tag
            if tag is not None and tag != "!" and not tag.startswith("tag:yaml.org,2002:"):
                raise YamlProblem(line, f"the tag {tag} is not allowed in policy files")
            if tag is not None and tag.startswith("tag:yaml.org,2002:python"):
                raise YamlProblem(line, f"the tag {tag} is not allowed in policy files")
        return super().compose_node(parent, index)  # type: ignore[no-any-return]

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            if not isinstance(key, str):
                raise YamlProblem(key_node.start_mark.line + 1, f"keys must be text, got {key!r}")
            if key in seen:
                raise YamlProblem(key_node.start_mark.line + 1, f"duplicate key {key!r}")
            seen.add(key)
        return super().construct_mapping(node, deep=True)

    def construct_yaml_float(self, node: ScalarNode) -> Decimal:  # type: ignore[override]
        text = str(self.construct_scalar(node)).replace("_", "")  # type: ignore[no-untyped-call]
        try:
            value = Decimal(text)
        except InvalidOperation as exc:
            raise YamlProblem(node.start_mark.line + 1, f"{text!r} is not a finite number") from exc
        if not value.is_finite():
            raise YamlProblem(node.start_mark.line + 1, f"{text!r} is not a finite number")
        return value


_StrictLoader.add_constructor("tag:yaml.org,2002:float", _StrictLoader.construct_yaml_float)
# Timestamps stay text; the schema parses dates itself, so "2026-01-01" and '2026-01-01' agree.
_StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)


@dataclass(frozen=True)
class YamlDocument:
    data: Any
    root: Node | None

    def line_of(self, loc: tuple[Any, ...]) -> int | None:
        """The line of the value at ``loc`` (a pydantic error location), or its nearest parent."""
        node = self.root
        line = node.start_mark.line + 1 if node is not None else None
        for part in loc:
            if isinstance(node, MappingNode):
                match = next((v for k, v in node.value if isinstance(k, ScalarNode) and k.value == str(part)), None)
                if match is None:
                    return line
                node = match
            elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                node = node.value[part]
            else:
                return line
            line = node.start_mark.line + 1
        return line


def _check_depth(node: Node, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise YamlProblem(node.start_mark.line + 1, f"nesting deeper than {MAX_DEPTH} levels")
    if isinstance(node, MappingNode):
        for key, value in node.value:
            _check_depth(key, depth + 1)
            _check_depth(value, depth + 1)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            _check_depth(item, depth + 1)


def load_strict(text: str | bytes) -> YamlDocument:
    raw = text.encode("utf-8") if isinstance(text, str) else text
    if len(raw) > MAX_BYTES:
        raise YamlProblem(None, f"file is {len(raw)} bytes; the limit is {MAX_BYTES}")
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlProblem(None, f"file is not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    loader = _StrictLoader(decoded)
    try:
        root = loader.get_single_node()
        if root is None:
            return YamlDocument(None, None)
        _check_depth(root)
        data = loader.construct_document(root)
    except YamlProblem:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise YamlProblem(mark.line + 1 if mark else None, f"{exc.context or ''} {exc.problem or ''}".strip()) from exc
    except yaml.YAMLError as exc:
        raise YamlProblem(None, str(exc)) from exc
    finally:
        loader.dispose()
    return YamlDocument(data, root)
