"""Strict YAML for policy files: safe types only, no anchors or aliases (so no "billion laughs"),
no duplicate keys, one document, bounded size and depth, floats read as exact decimals.

Plain scalars resolve by a narrow, YAML 1.2-like table: only ``true``/``false`` are booleans
(``NO`` and ``on`` stay text: the "Norway problem"), integers are plain decimal (no octal,
hex or sexagesimal surprises such as ``010`` = 8 or ``1:30`` = 90), and numbers are bounded,
so a policy file cannot smuggle in a value the rest of the system would choke on.

Every value keeps its line, so a schema error can name the line it came from."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_BYTES = 256 * 1024
MAX_DEPTH = 32
# Far beyond any money amount or ratio, far below what makes arithmetic or printing costly.
MAX_DIGITS = 40
MAX_EXPONENT = 40

_CORE = "tag:yaml.org,2002:"
_ALLOWED_TAGS = frozenset(_CORE + name for name in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp"))


@dataclass(frozen=True)
class YamlProblem(Exception):
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


class _StrictLoader(yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        line = event.start_mark.line + 1 if event.start_mark else None
        if isinstance(event, yaml.AliasEvent):
            raise YamlProblem(line, "aliases (*name) are not allowed in policy files")
        if getattr(event, "anchor", None):
            raise YamlProblem(line, "anchors (&name) are not allowed in policy files")
        if isinstance(event, yaml.ScalarEvent | yaml.SequenceStartEvent | yaml.MappingStartEvent):
            tag = event.tag
            if tag is not None and tag != "!" and tag not in _ALLOWED_TAGS:
                raise YamlProblem(line, f"the tag {tag} is not allowed in policy files")
        # The composer recurses once per level: count here, before Python's own stack runs out.
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise YamlProblem(line, f"nesting deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise YamlProblem(key_node.start_mark.line + 1, f"keys must be text, got {key!r}")
            if key in seen:
                raise YamlProblem(key_node.start_mark.line + 1, f"duplicate key {key!r}")
            seen.add(key)
        return super().construct_mapping(node, deep=True)

    def construct_date_text(self, node: ScalarNode) -> str:
        return str(self.construct_scalar(node))

    def construct_yaml_int(self, node: ScalarNode) -> int:
        text = str(self.construct_scalar(node))
        digits = text.lstrip("+-")
        if not digits.isascii() or not digits.isdigit():
            raise YamlProblem(node.start_mark.line + 1, f"{text!r} is not a plain decimal integer")
        if len(digits) > MAX_DIGITS:
            raise YamlProblem(node.start_mark.line + 1, f"integer with {len(digits)} digits; at most {MAX_DIGITS}")
        return int(text, 10)

    def construct_yaml_float(self, node: ScalarNode) -> Decimal:  # type: ignore[override]
        text = str(self.construct_scalar(node))
        line = node.start_mark.line + 1
        try:
            value = Decimal(text)
        except InvalidOperation as exc:
            raise YamlProblem(line, f"{text!r} is not a finite number") from exc
        if not value.is_finite():
            raise YamlProblem(line, f"{text!r} is not a finite number")
        if len(value.as_tuple().digits) > MAX_DIGITS or (value and abs(value.adjusted()) > MAX_EXPONENT):
            raise YamlProblem(
                line, f"{text!r} is out of range (at most {MAX_DIGITS} digits, exponent within ±{MAX_EXPONENT})"
            )
        return value


# A fresh resolver table (the class attribute is shared with SafeLoader, so build our own).
_StrictLoader.yaml_implicit_resolvers = {}
_StrictLoader.add_implicit_resolver(_CORE + "bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_StrictLoader.add_implicit_resolver(_CORE + "null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])
_StrictLoader.add_implicit_resolver(_CORE + "int", re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789"))
_StrictLoader.add_implicit_resolver(
    _CORE + "float",
    # NaN and infinities resolve as numbers only so that they are refused by name, not kept as text.
    re.compile(
        r"^(?:[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?[0-9]+[eE][-+]?[0-9]+"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
_StrictLoader.add_implicit_resolver(
    _CORE + "timestamp", re.compile(r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}$"), list("0123456789")
)
_StrictLoader.add_constructor(_CORE + "int", _StrictLoader.construct_yaml_int)
_StrictLoader.add_constructor(_CORE + "float", _StrictLoader.construct_yaml_float)
# Timestamps stay text; the schema parses dates itself, so "2026-01-01" and '2026-01-01' agree.
_StrictLoader.add_constructor(_CORE + "timestamp", _StrictLoader.construct_date_text)


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
