"""GitHub Actions expressions (``${{ … }}``), evaluated as GitHub documents them, for the rehearsal.

No maintained Python library evaluates them, so this is a small recursive-descent parser of the documented
grammar: literals, context properties (``a.b``, ``a['b']``, ``a.*.b``), ``!``, comparisons (case-insensitive
for strings, numbers otherwise), ``&&``/``||`` (which return an operand, as in JavaScript), and the documented
functions. Anything else is an :class:`ExpressionError`, never a guess.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

_TOKEN = re.compile(r"""\s*(?:
    (?P<num>-?(?:0x[0-9a-fA-F]+|\d+\.?\d*(?:[eE][-+]?\d+)?))
  | (?P<str>'(?:[^']|'')*')
  | (?P<op>==|!=|<=|>=|&&|\|\||[!<>()\[\].,*])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_-]*)
)""", re.VERBOSE)
_EMBEDDED = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
_STATUS = ("success", "failure", "always", "cancelled")


class ExpressionError(ValueError):
    """An expression that is not valid, or uses what GitHub does not define."""


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise ExpressionError(f"cannot read {text[pos:]!r} in {text!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def truthy(value: Any) -> bool:
    """false, 0, -0, '', null and NaN are falsy; everything else is truthy."""
    if isinstance(value, float) and math.isnan(value):
        return False
    return value not in (False, 0, "", None)


def _number(value: Any) -> float:
    if value is None or value is False:
        return 0.0
    if value is True:
        return 1.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return 0.0
        try:
            return float(int(text, 16)) if text.lower().startswith("0x") else float(text)
        except ValueError:
            return math.nan
    return math.nan


def _compare(op: str, left: Any, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        a, b = left.casefold(), right.casefold()
    elif type(left) is type(right) and isinstance(left, dict | list):
        a, b = id(left), id(right)  # objects and arrays are equal only to themselves
    else:
        a, b = _number(left), _number(right)
        if math.isnan(a) or math.isnan(b):
            return op == "!="
    return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def to_string(value: Any) -> str:
    """How GitHub prints a value into a string: null is empty, booleans are lower-case."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value, indent=2)
    return str(value)


def _lookup(value: Any, name: str) -> Any:
    """Property access: case-insensitive, null where absent (as GitHub's contexts behave)."""
    if isinstance(value, Mapping):
        if name in value:
            return value[name]
        folded = {str(k).casefold(): v for k, v in value.items()}
        return folded.get(name.casefold())
    if isinstance(value, list) and isinstance(name, int | float) and not isinstance(name, bool):
        index = int(name)
        return value[index] if 0 <= index < len(value) else None
    return None


def _format(template: str, *args: Any) -> str:
    def sub(match: re.Match) -> str:
        index = int(match.group(1))
        if index >= len(args):
            raise ExpressionError(f"format: no argument {{{index}}} in {template!r}")
        return to_string(args[index])
    return re.sub(r"\{(\d+)\}", sub, template.replace("{{", "\0").replace("}}", "\1")).replace(
        "\0", "{").replace("\1", "}")


def _contains(search: Any, item: Any) -> bool:
    if isinstance(search, list):
        return any(_compare("==", x, item) for x in search)
    return to_string(item).casefold() in to_string(search).casefold()


def _from_json(text: Any) -> Any:
    try:
        return json.loads(to_string(text))
    except json.JSONDecodeError as exc:
        raise ExpressionError(f"fromJSON: not JSON ({exc.msg}): {to_string(text)[:80]!r}") from None


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "fromjson": _from_json,
    "tojson": lambda v: json.dumps(v, indent=2),
    "contains": _contains,
    "startswith": lambda s, v: to_string(s).casefold().startswith(to_string(v).casefold()),
    "endswith": lambda s, v: to_string(s).casefold().endswith(to_string(v).casefold()),
    "format": lambda t, *a: _format(to_string(t), *a),
    "join": lambda a, sep=",": to_string(sep).join(map(to_string, a)) if isinstance(a, list) else to_string(a),
}


class _Parser:
    def __init__(self, text: str, contexts: Mapping[str, Any], status: Mapping[str, bool]):
        self.text, self.tokens, self.pos = text, _tokens(text), 0
        self.contexts, self.status = contexts, status

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("end", "")

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token[0] == "end" or (value is not None and token[1] != value):
            raise ExpressionError(f"expected {value or 'more'} in {self.text!r}")
        self.pos += 1
        return token

    def parse(self) -> Any:
        value = self.or_()
        if self.peek()[0] != "end":
            raise ExpressionError(f"unexpected {self.peek()[1]!r} in {self.text!r}")
        return value

    def or_(self) -> Any:
        value = self.and_()
        while self.peek() == ("op", "||"):
            self.take()
            right = self.and_()
            value = value if truthy(value) else right
        return value

    def and_(self) -> Any:
        value = self.equality()
        while self.peek() == ("op", "&&"):
            self.take()
            right = self.equality()
            value = right if truthy(value) else value
        return value

    def equality(self) -> Any:
        value = self.comparison()
        while self.peek()[1] in ("==", "!=") and self.peek()[0] == "op":
            op = self.take()[1]
            value = _compare(op, value, self.comparison())
        return value

    def comparison(self) -> Any:
        value = self.unary()
        while self.peek()[1] in ("<", "<=", ">", ">=") and self.peek()[0] == "op":
            op = self.take()[1]
            value = _compare(op, value, self.unary())
        return value

    def unary(self) -> Any:
        if self.peek() == ("op", "!"):
            self.take()
            return not truthy(self.unary())
        return self.postfix(self.primary())

    def postfix(self, value: Any) -> Any:
        while self.peek()[1] in (".", "[") and self.peek()[0] == "op":
            if self.take()[1] == ".":
                kind, name = self.take()
                if (kind, name) == ("op", "*"):
                    value = list(value.values()) if isinstance(value, Mapping) else value if isinstance(
                        value, list) else []
                elif kind == "ident":
                    value = [_lookup(v, name) for v in value] if isinstance(value, list) else _lookup(value, name)
                else:
                    raise ExpressionError(f"expected a property name after '.' in {self.text!r}")
            else:
                key = self.or_()
                self.take("]")
                value = _lookup(value, key if isinstance(key, str) else _number(key))
        return value

    def primary(self) -> Any:
        kind, text = self.take()
        if kind == "num":
            number = float(int(text, 16)) if text.lower().startswith(("0x", "-0x")) else float(text)
            return int(number) if number.is_integer() else number
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if (kind, text) == ("op", "("):
            value = self.or_()
            self.take(")")
            return value
        if kind != "ident":
            raise ExpressionError(f"unexpected {text!r} in {self.text!r}")
        if text in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[text]
        if self.peek() == ("op", "("):
            return self.call(text)
        if text.casefold() not in {k.casefold() for k in self.contexts}:
            raise ExpressionError(f"unknown context {text!r} in {self.text!r}; known here: "
                                  f"{', '.join(sorted(self.contexts))}")
        return _lookup(self.contexts, text)

    def call(self, name: str) -> Any:
        self.take("(")
        args = []
        while self.peek() != ("op", ")"):
            args.append(self.or_())
            if self.peek() == ("op", ","):
                self.take()
        self.take(")")
        folded = name.casefold()
        if folded in _STATUS:
            if args or folded not in {k.casefold() for k in self.status}:
                raise ExpressionError(f"{name}() is a status check, allowed in if: only, without arguments")
            return self.status[folded]
        if folded not in _FUNCTIONS:
            raise ExpressionError(f"unknown function {name}() in {self.text!r}")
        try:
            return _FUNCTIONS[folded](*args)
        except TypeError:
            raise ExpressionError(f"{name}() called with {len(args)} argument(s) in {self.text!r}") from None


def evaluate(text: str, contexts: Mapping[str, Any], status: Mapping[str, bool] | None = None) -> Any:
    """The value of one expression (without ``${{ }}``)."""
    return _Parser(text, contexts, status or {}).parse()


def has_status_check(text: str) -> bool:
    """Whether an ``if:`` calls success(), failure(), always() or cancelled() (else success() is implied)."""
    return any(kind == "ident" and value.casefold() in _STATUS for kind, value in _tokens(_strip(text)))


def _strip(text: str) -> str:
    text = text.strip()
    return text[3:-2] if text.startswith("${{") and text.endswith("}}") else text


def condition(text: Any, contexts: Mapping[str, Any], status: Mapping[str, bool]) -> bool:
    """An ``if:``: with ``${{ }}`` or without, ``success() && (…)`` unless it checks a status itself."""
    if isinstance(text, bool):
        return text and status["success"]
    expr = _strip(str(text))
    value = truthy(evaluate(expr, contexts, status))
    return value if has_status_check(expr) else value and status["success"]


def render(value: Any, contexts: Mapping[str, Any]) -> Any:
    """Every ``${{ }}`` in ``value`` (strings, and the strings in lists and mappings) replaced.

    A string that is one whole expression takes the expression's value (an object for ``fromJSON``).
    """
    if isinstance(value, dict):
        return {k: render(v, contexts) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, contexts) for v in value]
    if not isinstance(value, str) or "${{" not in value:
        return value
    whole = _EMBEDDED.fullmatch(value.strip())
    if whole:
        return evaluate(whole.group(1), contexts)
    return _EMBEDDED.sub(lambda m: to_string(evaluate(m.group(1), contexts)), value)
