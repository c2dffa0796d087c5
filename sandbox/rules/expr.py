"""The policy expression language: what a rule's ``when`` may say, and its exact meaning.

A small language of its own (tokenizer, recursive-descent parser, type check, evaluator): no
``eval``, no Python ``ast``, nothing from the text ever runs as code. Everything a text could do
is decided here at compile time: the names it reads must be in the program's catalogue, the
only calls are the four window functions, and the size and nesting are bounded before any
evaluation, so a policy file cannot exhaust memory or the stack.

``evaluate_scalar`` is the definition of truth: exact decimals (34 significant digits, half-even)
and three-valued logic in which a missing input is never read as compliance and a division by
zero is an ``error``, never a pass. The batch evaluator in ``vector.py`` must agree with it on
every row."""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_EVEN, Context, Decimal, DivisionByZero, InvalidOperation, Overflow
from typing import Literal as TypingLiteral

from sandbox.rules.numbers import parse_exact

Kind = TypingLiteral["bool", "number"]

MAX_TEXT = 2000
MAX_NODES = 200
MAX_DEPTH = 32
MAX_WINDOW = 36
PRECISION = 34

FUNCTIONS = ("prev", "pct_change", "sum_to_date", "mean_last")
INSTITUTION_FIELDS = ("rating", "capital_adequacy_ratio", "npl_ratio", "solvency_comprehensive", "solvency_core")
FILING_FIELDS = ("days_late", "filed")
KEYWORDS = frozenset({"and", "or", "not", "true", "false"})
COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")
_QUALIFIERS = ("quota", "institution", "filing")
_OPERATORS_TEXT = "+ - * / < <= > >= == != and or not"


class ExprError(Exception):
    """A refusal a policy author can act on: what is wrong and where (1-based column)."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.column = column


# -- tokens ----------------------------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_WORD_TAIL = re.compile(r"[A-Za-z0-9_.]+")
_EXPONENT = re.compile(r"[eE][+-]?([0-9]+)$")
_TWO_CHAR = ("<=", ">=", "==", "!=")
_ONE_CHAR = "<>+-*/(),"
_WHITESPACE = " \t\r\n"
# Operators people bring from other languages, refused with a word about what to write instead.
_FOREIGN = {
    "**": "'**' is not part of the language (there are no powers); write the multiplication out, e.g. x * x",
    "//": "'//' is not part of the language; the operators are " + _OPERATORS_TEXT,
    "%": "'%' is not part of the language; write ratios as fractions (0.03, not 3%)",
    "&&": "'&&' is not part of the language; write 'and'",
    "||": "'||' is not part of the language; write 'or'",
    "&": "'&' is not part of the language; write 'and'",
    "|": "'|' is not part of the language; write 'or'",
    "!": "'!' is not part of the language; write 'not'",
    "=": "'=' is not part of the language; to test equality write '=='",
    "^": "'^' is not part of the language (there are no powers); write the multiplication out",
    "'": "text in quotes is not part of the language; conditions compare numbers",
    '"': "text in quotes is not part of the language; conditions compare numbers",
}


@dataclass(frozen=True, slots=True)
class Token:
    kind: TypingLiteral["num", "name", "op", "end"]
    text: str
    start: int

    @property
    def end(self) -> int:
        return self.start + len(self.text)

    @property
    def column(self) -> int:
        return self.start + 1

    def shown(self) -> str:
        return "the end of the expression" if self.kind == "end" else repr(excerpt(self.text))


def tokenize(text: str) -> list[Token]:
    return list(scan(text))


def scan(text: str) -> Iterator[Token]:
    """Tokens on demand: the parser reads one ahead, so the first fault in reading order is the
    one reported: an unknown function is named as such before the quotes of its argument."""
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in _WHITESPACE:
            i += 1
            continue
        if "0" <= ch <= "9":
            match = _NUMBER.match(text, i)
            assert match is not None
            end = match.end()
            if end < n and _WORD_TAIL.match(text[end]):
                bad = _WORD_TAIL.match(text, i)
                assert bad is not None
                raise ExprError(f"malformed number {bad.group()!r} at column {i + 1}", i + 1)
            yield Token("num", match.group(), i)
            i = end
            continue
        if ch.isascii() and (ch.isalpha() or ch == "_"):
            match = _NAME.match(text, i)
            assert match is not None
            end = match.end()
            if end < n and text[end] == ".":
                bad = _WORD_TAIL.match(text, i)
                assert bad is not None
                raise ExprError(_attribute_message(bad.group(), i + 1), i + 1)
            yield Token("name", match.group(), i)
            i = end
            continue
        two = text[i : i + 2]
        if two in ("**", "//", "&&", "||"):
            raise ExprError(f"{_FOREIGN[two]} (column {i + 1})", i + 1)
        if two in _TWO_CHAR:
            yield Token("op", two, i)
            i += 2
            continue
        if ch in _ONE_CHAR:
            yield Token("op", ch, i)
            i += 1
            continue
        if ch in _FOREIGN:
            raise ExprError(f"{_FOREIGN[ch]} (column {i + 1})", i + 1)
        if ch == ".":
            raise ExprError(
                f"unexpected '.' at column {i + 1}: attribute access is not part of the language; the dot only "
                "joins quota., institution. or filing. to a name, and a number needs a digit before its point "
                "(0.5, not .5)",
                i + 1,
            )
        shown = repr(ch) if ch.isascii() and ch.isprintable() else f"{ch!r} (U+{ord(ch):04X})"
        raise ExprError(f"unexpected character {shown} at column {i + 1}", i + 1)
    yield Token("end", "", n)


def excerpt(text: str, limit: int = 60) -> str:
    """A piece of an expression short enough to quote in a message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _attribute_message(text: str, column: int) -> str:
    return (
        f"{excerpt(text)!r} at column {column}: attribute access is not part of the language; a dot only appears in "
        "quota.NAME, institution.FIELD, filing.days_late and filing.filed"
    )


# -- the syntax tree -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    start: int  # 0-based offsets into the expression text
    end: int
    src: str

    @property
    def column(self) -> int:
        return self.start + 1

    @property
    def kind(self) -> Kind:
        raise NotImplementedError

    def children(self) -> tuple[Node, ...]:
        return ()


@dataclass(frozen=True)
class Number(Node):
    value: Decimal

    @property
    def kind(self) -> Kind:
        return "number"


@dataclass(frozen=True)
class Boolean(Node):
    value: bool

    @property
    def kind(self) -> Kind:
        return "bool"


@dataclass(frozen=True)
class Input(Node):
    """A value read as filed or as held: a metric of the current period, a quota, an institution
    field, or a filing fact. ``label`` is how the explanation names it."""

    source: TypingLiteral["metric", "quota", "institution", "days_late", "filed"]
    key: str
    label: str

    @property
    def kind(self) -> Kind:
        return "bool" if self.source == "filed" else "number"


@dataclass(frozen=True)
class Window(Node):
    """A function of one metric over the pilot's own history of expected periods."""

    function: TypingLiteral["prev", "pct_change", "sum_to_date", "mean_last"]
    metric: str
    periods: int  # mean_last's n; 0 for the others
    label: str

    @property
    def kind(self) -> Kind:
        return "number"


@dataclass(frozen=True)
class Negate(Node):
    operand: Node

    @property
    def kind(self) -> Kind:
        return "number"

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True)
class Arithmetic(Node):
    op: TypingLiteral["+", "-", "*", "/"]
    left: Node
    right: Node

    @property
    def kind(self) -> Kind:
        return "number"

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True)
class Compare(Node):
    op: TypingLiteral["<", "<=", ">", ">=", "==", "!="]
    left: Node
    right: Node

    @property
    def kind(self) -> Kind:
        return "bool"

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True)
class Not(Node):
    operand: Node

    @property
    def kind(self) -> Kind:
        return "bool"

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True)
class Logic(Node):
    op: TypingLiteral["and", "or"]
    left: Node
    right: Node

    @property
    def kind(self) -> Kind:
        return "bool"

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


def walk(node: Node) -> Iterator[Node]:
    """Every node, in reading order (a node before its children, children left to right)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children()))


# -- the parser ------------------------------------------------------------------------------------


def _kind_text(kind: Kind) -> str:
    return "a condition (true or false)" if kind == "bool" else "a number"


def _listing(names: Collection[str], limit: int = 30) -> str:
    ordered = sorted(names)
    if not ordered:
        return "(none)"
    shown = ", ".join(ordered[:limit])
    return shown if len(ordered) <= limit else f"{shown} and {len(ordered) - limit} more"


class _Parser:
    def __init__(self, text: str, metrics: frozenset[str], quotas: frozenset[str]) -> None:
        self.text = text
        self.tokens = scan(text)
        self.tok = next(self.tokens)
        self.metrics = metrics
        self.quotas = quotas
        self.depth = 0
        self.nodes = 0

    # token helpers

    def advance(self) -> Token:
        tok = self.tok
        if tok.kind != "end":
            self.tok = next(self.tokens)
        return tok

    def at_end(self) -> bool:
        return self.tok.kind == "end"

    def at_op(self, *ops: str) -> bool:
        return self.tok.kind == "op" and self.tok.text in ops

    def at_keyword(self, word: str) -> bool:
        return self.tok.kind == "name" and self.tok.text == word

    def expect_op(self, op: str, why: str) -> Token:
        if not self.at_op(op):
            raise ExprError(
                f"expected '{op}' {why} at column {self.tok.column}, found {self.tok.shown()}", self.tok.column
            )
        return self.advance()

    def enter(self, tok: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError(
                f"nested too deeply at column {tok.column}: brackets, 'not' and minus signs may nest at most "
                f"{MAX_DEPTH} levels",
                tok.column,
            )

    def count(self, tok: Token, parts: int = 1) -> None:
        self.nodes += parts
        if self.nodes > MAX_NODES:
            raise ExprError(
                f"the expression is too long at column {tok.column}: more than {MAX_NODES} parts (names, numbers, "
                "operators); split the condition into several rules",
                tok.column,
            )

    def src(self, start: int, end: int) -> str:
        return self.text[start:end]

    def need(self, node: Node, kind: Kind, op: Token, role: str) -> None:
        if node.kind != kind:
            raise ExprError(
                f"'{op.text}' at column {op.column} {role}, but '{excerpt(node.src)}' is {_kind_text(node.kind)}",
                op.column,
            )

    # grammar, lowest precedence first

    def parse(self) -> Node:
        if self.at_end():
            raise ExprError("the expression is empty", 1)
        node = self.parse_or()
        if not self.at_end():
            tok = self.tok
            if tok.kind == "op" and tok.text == ")":
                raise ExprError(f"unexpected ')' at column {tok.column}: no '(' is open", tok.column)
            if tok.kind == "name" and tok.text.lower() in KEYWORDS:
                raise ExprError(
                    f"{tok.text!r} at column {tok.column}: write {tok.text.lower()!r} in lower case", tok.column
                )
            raise ExprError(
                f"unexpected {tok.shown()} at column {tok.column} after a complete expression; "
                "join conditions with 'and' or 'or'",
                tok.column,
            )
        return node

    def parse_or(self) -> Node:
        left = self.parse_and()
        while self.at_keyword("or"):
            op = self.advance()
            right = self.parse_and()
            left = self.logic(op, left, right)
        return left

    def parse_and(self) -> Node:
        left = self.parse_not()
        while self.at_keyword("and"):
            op = self.advance()
            right = self.parse_not()
            left = self.logic(op, left, right)
        return left

    def logic(self, op: Token, left: Node, right: Node) -> Node:
        self.need(left, "bool", op, "joins conditions (true or false)")
        self.need(right, "bool", op, "joins conditions (true or false)")
        self.count(op)
        return Logic(left.start, right.end, self.src(left.start, right.end), op.text, left, right)  # type: ignore[arg-type]

    def parse_not(self) -> Node:
        if self.at_keyword("not"):
            op = self.advance()
            self.enter(op)
            operand = self.parse_not()
            self.depth -= 1
            self.need(operand, "bool", op, "needs a condition (true or false)")
            self.count(op)
            return Not(op.start, operand.end, self.src(op.start, operand.end), operand)
        return self.parse_comparison()

    def parse_comparison(self) -> Node:
        left = self.parse_additive()
        if not self.at_op(*COMPARISONS):
            return left
        op = self.advance()
        right = self.parse_additive()
        if self.at_op(*COMPARISONS):
            nxt = self.tok
            raise ExprError(
                f"comparisons cannot be chained ('{nxt.text}' at column {nxt.column} follows '{op.text}' at column "
                f"{op.column}); write 'a < b and b < c'",
                nxt.column,
            )
        self.need(left, "number", op, "compares numbers")
        self.need(right, "number", op, "compares numbers")
        self.count(op)
        return Compare(left.start, right.end, self.src(left.start, right.end), op.text, left, right)  # type: ignore[arg-type]

    def parse_additive(self) -> Node:
        left = self.parse_term()
        while self.at_op("+", "-"):
            op = self.advance()
            right = self.parse_term()
            left = self.arithmetic(op, left, right)
        return left

    def parse_term(self) -> Node:
        left = self.parse_unary()
        while self.at_op("*", "/"):
            op = self.advance()
            right = self.parse_unary()
            left = self.arithmetic(op, left, right)
        return left

    def arithmetic(self, op: Token, left: Node, right: Node) -> Node:
        self.need(left, "number", op, "works on numbers")
        self.need(right, "number", op, "works on numbers")
        if op.text == "/" and isinstance(right, Number) and right.value.is_zero():
            raise ExprError(f"division by zero at column {op.column}: '{right.src}' is 0", op.column)
        self.count(op)
        return Arithmetic(left.start, right.end, self.src(left.start, right.end), op.text, left, right)  # type: ignore[arg-type]

    def parse_unary(self) -> Node:
        if self.at_op("-"):
            op = self.advance()
            self.enter(op)
            operand = self.parse_unary()
            self.depth -= 1
            self.need(operand, "number", op, "(minus) needs a number")
            self.count(op)
            return Negate(op.start, operand.end, self.src(op.start, operand.end), operand)
        if self.at_op("+"):
            tok = self.tok
            raise ExprError(f"unexpected '+' at column {tok.column}: a number needs no plus sign", tok.column)
        return self.parse_primary()

    def parse_primary(self) -> Node:
        tok = self.tok
        if tok.kind == "num":
            self.advance()
            self.count(tok)
            return Number(tok.start, tok.end, tok.text, _literal(tok))
        if tok.kind == "name" and tok.text not in ("and", "or", "not"):
            self.advance()
            if self.at_op("("):
                return self.parse_call(tok)
            return self.parse_name(tok)
        if self.at_op("("):
            self.advance()
            self.enter(tok)
            inner = self.parse_or()
            if self.at_end():
                raise ExprError(f"'(' at column {tok.column} is never closed", tok.column)
            close = self.expect_op(")", f"to close the '(' of column {tok.column}")
            self.depth -= 1
            # The brackets belong to the node's text, so messages quote "(b - c)" whole.
            return replace(inner, start=tok.start, end=close.end, src=self.src(tok.start, close.end))
        raise ExprError(
            f"expected a value (a number, a name or '(') at column {tok.column}, found {tok.shown()}", tok.column
        )

    def parse_name(self, tok: Token) -> Node:
        text, col = tok.text, tok.column
        if "." in text:
            head, _, tail = text.partition(".")
            if head not in _QUALIFIERS:
                raise ExprError(_attribute_message(text, col), col)
            if "." in tail:
                raise ExprError(
                    f"{text!r} at column {col}: a name has at most one dot (quota.NAME, institution.FIELD, "
                    "filing.days_late, filing.filed); attribute access is not part of the language",
                    col,
                )
            self.count(tok)
            if head == "quota":
                if tail not in self.quotas:
                    raise ExprError(
                        f"unknown quota {tail!r} in {text} at column {col}{_suggest(tail, self.quotas)}; "
                        f"the program's quotas are {_listing(self.quotas)}",
                        col,
                    )
                return Input(tok.start, tok.end, text, "quota", tail, text)
            if head == "institution":
                if tail not in INSTITUTION_FIELDS:
                    raise ExprError(
                        f"unknown institution field {tail!r} in {text} at column {col}"
                        f"{_suggest(tail, INSTITUTION_FIELDS)}; the fields are {', '.join(INSTITUTION_FIELDS)}",
                        col,
                    )
                return Input(tok.start, tok.end, text, "institution", tail, text)
            if tail not in FILING_FIELDS:
                raise ExprError(
                    f"unknown filing field {tail!r} in {text} at column {col}; the fields are "
                    "filing.days_late and filing.filed",
                    col,
                )
            source: TypingLiteral["days_late", "filed"] = "days_late" if tail == "days_late" else "filed"
            return Input(tok.start, tok.end, text, source, tail, text)
        if text in ("true", "false"):
            self.count(tok)
            return Boolean(tok.start, tok.end, text, text == "true")
        if text in self.metrics:
            self.count(tok)
            return Input(tok.start, tok.end, text, "metric", text, text)
        if text in FUNCTIONS:
            raise ExprError(f"{text} at column {col} is a function: write {text}(metric)", col)
        if text in _QUALIFIERS:
            example = {
                "quota": "quota.exposure_limit",
                "institution": "institution.npl_ratio",
                "filing": "filing.days_late",
            }
            raise ExprError(f"'{text}' at column {col} needs a name after a dot, e.g. {example[text]}", col)
        if text.lower() in KEYWORDS or text.lower() in FUNCTIONS:
            raise ExprError(f"{text!r} at column {col}: write {text.lower()!r} in lower case", col)
        raise ExprError(
            f"unknown metric {text!r} at column {col}{_suggest(text, self.metrics)}; "
            f"the program's metrics are {_listing(self.metrics)}",
            col,
        )

    def parse_call(self, name: Token) -> Node:
        function, col = name.text, name.column
        if function not in FUNCTIONS:
            if "." in function and function.partition(".")[0] not in _QUALIFIERS:
                raise ExprError(_attribute_message(function, col), col)
            raise ExprError(
                f"unknown function {function!r} at column {col}; the functions are {', '.join(FUNCTIONS)}", col
            )
        usage = (
            f"{function} takes two arguments, a metric name and a whole number of periods from 1 to {MAX_WINDOW}: "
            "e.g. mean_last(complaints_count, 3)"
            if function == "mean_last"
            else f"{function} takes one argument, a metric name: e.g. {function}(npl_ratio)"
        )
        self.advance()  # the '('
        arg = self.tok
        if arg.kind != "name" or "." in arg.text or arg.text in KEYWORDS:
            if self.at_op(")"):
                raise ExprError(f"{usage} (column {col})", col)
            raise ExprError(
                f"the argument of {function} at column {arg.column} must be a metric name, e.g. {function}(npl_ratio)",
                arg.column,
            )
        if arg.text in FUNCTIONS:
            raise ExprError(
                f"the argument of {function} at column {arg.column} must be a metric name; functions do not nest",
                arg.column,
            )
        if arg.text not in self.metrics:
            raise ExprError(
                f"unknown metric {arg.text!r} at column {arg.column}{_suggest(arg.text, self.metrics)}; "
                f"the program's metrics are {_listing(self.metrics)}",
                arg.column,
            )
        self.advance()
        periods = 0
        if function == "mean_last":
            if self.at_op(")"):
                raise ExprError(f"{usage} (column {col})", col)
            if not self.at_op(","):
                raise ExprError(
                    f"the argument of {function} at column {arg.column} must be a metric name alone", arg.column
                )
            self.advance()
            n_tok = self.tok
            digits = n_tok.kind == "num" and n_tok.text.isdigit() and not n_tok.text.startswith("0")
            if not digits or not 1 <= int(n_tok.text) <= MAX_WINDOW:
                raise ExprError(
                    f"the number of periods of mean_last at column {n_tok.column} must be a whole number from 1 to "
                    f"{MAX_WINDOW}, written as digits",
                    n_tok.column,
                )
            periods = int(n_tok.text)
            self.advance()
            if self.at_op(","):
                raise ExprError(f"{usage} (column {col})", col)
            if not self.at_op(")"):
                raise ExprError(
                    f"the number of periods of mean_last at column {n_tok.column} must be a whole number from 1 to "
                    f"{MAX_WINDOW}, written as digits",
                    n_tok.column,
                )
        else:
            if self.at_op(","):
                raise ExprError(f"{usage} (column {col})", col)
            if not self.at_op(")"):
                raise ExprError(
                    f"the argument of {function} at column {arg.column} must be a metric name alone, "
                    f"e.g. {function}(npl_ratio)",
                    arg.column,
                )
        close = self.advance()
        self.count(name, 3 if function == "mean_last" else 2)
        label = f"mean_last({arg.text}, {periods})" if function == "mean_last" else f"{function}({arg.text})"
        return Window(name.start, close.end, self.src(name.start, close.end), function, arg.text, periods, label)  # type: ignore[arg-type]


def _literal(tok: Token) -> Decimal:
    exponent = _EXPONENT.search(tok.text)
    if exponent and len(exponent.group(1)) > 2:
        raise ExprError(f"number {tok.text!r} at column {tok.column}: exponent beyond +-30", tok.column)
    if len(tok.text) > 1 and tok.text[0] == "0" and tok.text[1].isdigit():
        raise ExprError(f"number {tok.text!r} at column {tok.column}: write it without leading zeros", tok.column)
    try:
        return parse_exact(tok.text)
    except ValueError as exc:
        raise ExprError(f"number {tok.text!r} at column {tok.column}: {exc}", tok.column) from None


def _suggest(word: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


# -- compiled expressions --------------------------------------------------------------------------


@dataclass(frozen=True)
class Expression:
    text: str
    kind: Kind
    metrics: frozenset[str]
    names: tuple[str, ...]
    root: Node = field(repr=False)
    # How many expected periods, current included, the expression looks at; None: the whole
    # history (sum_to_date). Lets a caller load no more history than needed.
    lookback: int | None = 1
    # Derived from the tree once, for the evaluator: the values to read (one node per label) and
    # the comparisons.
    leaves: tuple[Input | Window, ...] = field(default=(), repr=False, compare=False)
    comparisons: tuple[Compare, ...] = field(default=(), repr=False, compare=False)

    @property
    def nodes(self) -> int:
        return sum(1 for _ in walk(self.root))


def compile_expression(
    text: str,
    *,
    metrics: Collection[str],
    quotas: Collection[str],
    expect: Kind = "bool",
) -> Expression:
    if len(text) > MAX_TEXT:
        raise ExprError(f"the expression is {len(text)} characters long; at most {MAX_TEXT} are allowed", MAX_TEXT + 1)
    root = _Parser(text, frozenset(metrics), frozenset(quotas)).parse()
    if root.kind != expect:
        raise ExprError(
            f"the expression must be {_kind_text(expect)}, but '{excerpt(root.src)}' is {_kind_text(root.kind)}",
            root.column,
        )
    read: set[str] = set()
    names: list[str] = []
    lookback: int | None = 1
    for node in walk(root):
        labels: tuple[str, ...] = ()
        if isinstance(node, Input):
            # filing.filed is a yes/no fact, not a value: the explanation states it in words.
            labels = (node.label,) if node.source != "filed" else ()
            if node.source == "metric":
                read.add(node.key)
        elif isinstance(node, Window):
            read.add(node.metric)
            if node.function == "pct_change":
                labels = (node.label, node.metric, f"prev({node.metric})")
            else:
                labels = (node.label,)
            if node.function == "sum_to_date":
                lookback = None
            elif lookback is not None:
                lookback = max(lookback, node.periods if node.function == "mean_last" else 2)
        for label in labels:
            if label not in names:
                names.append(label)
    leaves: dict[str, Input | Window] = {}
    for node in walk(root):
        if isinstance(node, Input | Window):
            leaves.setdefault(node.label, node)
    comparisons = tuple(node for node in walk(root) if isinstance(node, Compare))
    return Expression(
        text, root.kind, frozenset(read), tuple(names), root, lookback, tuple(leaves.values()), comparisons
    )


# -- scalar evaluation: the definition of truth ----------------------------------------------------


@dataclass(frozen=True)
class ScalarContext:
    # One mapping per expected period of the pilot, oldest first, up to and including the current
    # one (the last). A metric absent from a mapping is missing in that period; a period with no
    # filing is an empty mapping.
    history: Sequence[Mapping[str, Decimal]]
    quotas: Mapping[str, Decimal]
    institution: Mapping[str, Decimal | None]
    days_late: Decimal | None  # None: not known (missing)
    filed: bool


@dataclass(frozen=True)
class ScalarResult:
    # "true" | "false" | "missing" | "error" for conditions; "value" | "missing" | "error" for numbers
    status: str
    value: Decimal | None  # the number, for number expressions with status "value"
    # Each name of Expression.names -> the value read (None if missing or not computable).
    reads: dict[str, Decimal | None]
    # The comparison shown as the threshold: left, operator, right, when the expression has
    # exactly one comparison.
    comparison: tuple[Decimal | None, str, Decimal | None] | None
    error: str | None


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()


@dataclass(frozen=True, slots=True)
class _Error:
    message: str


Value = Decimal | bool | _Missing | _Error
_Value = Value


def decimal_context() -> Context:
    """The arithmetic of rules: 34 significant digits, half-even; no trap can fire in practice
    (division by zero is checked first; exponents stay far inside the range)."""
    return Context(
        prec=PRECISION,
        rounding=ROUND_HALF_EVEN,
        Emax=999_999,
        Emin=-999_999,
        traps=[InvalidOperation, DivisionByZero, Overflow],
    )


# Shared by every evaluation: a context's flags record what happened (nobody reads them here), and
# its settings never change, so sharing it between threads is safe.
_DECIMAL = decimal_context()


def evaluate_scalar(expr: Expression, ctx: ScalarContext) -> ScalarResult:
    values: dict[str, _Value] = {}
    for node in expr.leaves:
        values[node.label] = _read(node, ctx)
        if isinstance(node, Window) and node.function == "pct_change":
            values.setdefault(node.metric, _current(ctx, node.metric))
            values.setdefault(f"prev({node.metric})", _previous(ctx, node.metric))
    reads: dict[str, Decimal | None] = {}
    for name in expr.names:
        value = values[name]
        reads[name] = value if isinstance(value, Decimal) else None

    outcome = _evaluate(expr.root, values)
    comparison = None
    if len(expr.comparisons) == 1:
        only = expr.comparisons[0]
        left, right = _evaluate(only.left, values), _evaluate(only.right, values)
        comparison = (
            left if isinstance(left, Decimal) else None,
            only.op,
            right if isinstance(right, Decimal) else None,
        )
    if isinstance(outcome, _Error):
        return ScalarResult("error", None, reads, comparison, outcome.message)
    if isinstance(outcome, _Missing):
        return ScalarResult("missing", None, reads, comparison, None)
    if isinstance(outcome, bool):
        return ScalarResult("true" if outcome else "false", None, reads, comparison, None)
    return ScalarResult("value", outcome, reads, comparison, None)


def _current(ctx: ScalarContext, metric: str) -> Decimal | _Missing:
    if not ctx.history:
        return MISSING
    value = ctx.history[-1].get(metric)
    return MISSING if value is None else value


def _previous(ctx: ScalarContext, metric: str) -> Decimal | _Missing:
    if len(ctx.history) < 2:
        return MISSING
    value = ctx.history[-2].get(metric)
    return MISSING if value is None else value


def _read(node: Input | Window, ctx: ScalarContext) -> _Value:
    if isinstance(node, Input):
        if node.source == "metric":
            return _current(ctx, node.key)
        if node.source == "quota":
            value = ctx.quotas.get(node.key)
        elif node.source == "institution":
            value = ctx.institution.get(node.key)
        elif node.source == "days_late":
            value = ctx.days_late
        else:
            return bool(ctx.filed)
        return MISSING if value is None else value
    metric = node.metric
    if node.function == "prev":
        return _previous(ctx, metric)
    if node.function == "pct_change":
        return pct_change_value(node, _current(ctx, metric), _previous(ctx, metric))
    window = ctx.history if node.function == "sum_to_date" else ctx.history[-node.periods :]
    if not ctx.history or len(window) < max(node.periods, 1):
        return MISSING
    return window_value(node, [period.get(metric) for period in window])


# The exact arithmetic, shared with the batch evaluator so both decide a close call by the very
# same operations.


def pct_change_value(node: Window, current: _Value, previous: _Value) -> _Value:
    change = arithmetic_value("-", current, previous, node)
    return arithmetic_value("/", change, previous, node, f"division by zero in {node.label}: prev({node.metric}) is 0")


def window_value(node: Window, values: Sequence[Decimal | None]) -> _Value:
    """sum_to_date or mean_last over the values of its window (already cut to it), oldest first."""
    total = Decimal(0)
    for value in values:
        if value is None:
            return MISSING
        total = _DECIMAL.add(total, value)
    return total if node.function == "sum_to_date" else _DECIMAL.divide(total, Decimal(node.periods))


def arithmetic_value(op: str, left: _Value, right: _Value, node: Node, zero_message: str | None = None) -> _Value:
    # Error beats missing: a division by zero is certain even when the numerator is unknown.
    if isinstance(left, _Error):
        return left
    if isinstance(right, _Error):
        return right
    if op == "/" and isinstance(right, Decimal) and right.is_zero():
        if zero_message is None:
            divisor = node.right.src if isinstance(node, Arithmetic) else "the divisor"
            zero_message = f"division by zero in {node.src}: {divisor} is 0"
        return _Error(zero_message)
    if not isinstance(left, Decimal) or not isinstance(right, Decimal):
        return MISSING
    if op == "+":
        return _DECIMAL.add(left, right)
    if op == "-":
        return _DECIMAL.subtract(left, right)
    if op == "*":
        return _DECIMAL.multiply(left, right)
    return _DECIMAL.divide(left, right)


def compare_decimals(op: str, left: Decimal, right: Decimal) -> bool:
    if op == "<":
        return left < right
    if op == "<=":
        return left <= right
    if op == ">":
        return left > right
    if op == ">=":
        return left >= right
    if op == "==":
        return left == right
    return left != right


def _evaluate(node: Node, values: Mapping[str, _Value]) -> _Value:
    if isinstance(node, Number | Boolean):
        return node.value
    if isinstance(node, Input | Window):
        return values[node.label]
    if isinstance(node, Negate):
        operand = _evaluate(node.operand, values)
        # copy_negate is exact: negating never rounds, whatever the digits filed.
        return operand.copy_negate() if isinstance(operand, Decimal) else operand
    if isinstance(node, Arithmetic):
        return arithmetic_value(node.op, _evaluate(node.left, values), _evaluate(node.right, values), node)
    if isinstance(node, Compare):
        left, right = _evaluate(node.left, values), _evaluate(node.right, values)
        for side in (left, right):
            if isinstance(side, _Error):
                return side
        if not isinstance(left, Decimal) or not isinstance(right, Decimal):
            return MISSING
        return compare_decimals(node.op, left, right)
    if isinstance(node, Not):
        operand = _evaluate(node.operand, values)
        return (not operand) if isinstance(operand, bool) else operand
    assert isinstance(node, Logic)
    left, right = _evaluate(node.left, values), _evaluate(node.right, values)
    # Kleene logic: a deciding operand decides whatever the other is; otherwise error beats
    # missing, so a check that cannot be computed is never hidden behind one that lacks data.
    decisive = node.op == "or"
    if left is decisive or right is decisive:
        return decisive
    for side in (left, right):
        if isinstance(side, _Error):
            return side
    if isinstance(left, _Missing) or isinstance(right, _Missing):
        return MISSING
    return not decisive
