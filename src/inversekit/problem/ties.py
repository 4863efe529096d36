"""Tied parameters: a parameter defined as a differentiable function of others.

A tie is a callable ``tie(p) -> value`` over the dict of physical parameter values, or an
expression string in the names of other parameters, as in lmfit's ``expr``::

    Param(tie=lambda p: 2 * p["sigma1"])
    Param(tie="2 * sigma1")
    Param(tie="galaxy1.x0")            # sharing: the same value as another parameter
    Param(tie="sqrt(a**2 + b[1]**2)")  # element 1 of a tensor parameter

Expressions are parsed with :mod:`ast`, never ``eval``'d: numbers, parameter names (dotted
names included), ``+ - * / ** %``, element indexing by an integer, and the functions in
:data:`FUNCTIONS`. The value is recomputed from the fitted parameters whenever they are
unpacked, so a tie holds exactly at every point, and its uncertainty follows from theirs
by the delta method.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping

import torch
from torch import Tensor

from inversekit.errors import InputError

FUNCTIONS: dict[str, Callable] = {
    "exp": torch.exp,
    "log": torch.log,
    "log10": torch.log10,
    "log1p": torch.log1p,
    "expm1": torch.expm1,
    "sqrt": torch.sqrt,
    "sin": torch.sin,
    "cos": torch.cos,
    "tan": torch.tan,
    "arcsin": torch.asin,
    "arccos": torch.acos,
    "arctan": torch.atan,
    "sinh": torch.sinh,
    "cosh": torch.cosh,
    "tanh": torch.tanh,
    "abs": torch.abs,
}
CONSTANTS = {"pi": math.pi, "e": math.e}
_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.Mod: operator.mod,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}


class Tie:
    """A tie: ``fn(values) -> value`` and the text shown in reports."""

    def __init__(self, spec: Callable | str, owner: str):
        if isinstance(spec, str):
            self.text = spec.strip()
            self.fn = _compile(self.text, owner)
        elif callable(spec):
            self.text = getattr(spec, "__name__", "function")
            if self.text == "<lambda>":
                self.text = "function"
            self.fn = spec
        else:
            raise InputError(
                f"parameter '{owner}': tie must be a function of the parameter dict or an "
                f"expression string, got {type(spec).__name__}"
            )
        self.owner = owner
        self.depends: tuple[str, ...] = ()  # filled by order_ties

    def __repr__(self) -> str:
        return f"Tie({self.text!r})"


def dotted_name(node: ast.AST) -> str | None:
    """``a.b.c`` as a name, or ``None`` if the node is not a chain of names."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = dotted_name(node.value)
        return None if head is None else f"{head}.{node.attr}"
    return None


def _compile(text: str, owner: str) -> Callable[[Mapping[str, Tensor]], Tensor]:
    """An evaluator of the expression ``text`` over a dict of parameter values."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise InputError(
            f"parameter '{owner}': tie {text!r} is not an expression ({exc.msg})"
        ) from None

    def build(node: ast.AST) -> Callable:
        name = dotted_name(node)
        if name is not None:
            if name in CONSTANTS and isinstance(node, ast.Name):
                value = CONSTANTS[name]
                return lambda p: value
            return lambda p: p[name]
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            value = node.value
            return lambda p: value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            op, left, right = _BINARY[type(node.op)], build(node.left), build(node.right)
            return lambda p: op(left(p), right(p))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            op, operand = _UNARY[type(node.op)], build(node.operand)
            return lambda p: op(operand(p))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            fn = FUNCTIONS.get(node.func.id)
            if fn is not None and len(node.args) == 1:
                arg = build(node.args[0])
                return lambda p: fn(_tensor(arg(p)))
        if isinstance(node, ast.Subscript):
            index = node.slice
            items = index.elts if isinstance(index, ast.Tuple) else [index]
            if all(isinstance(i, ast.Constant) and isinstance(i.value, int) for i in items):
                key = tuple(i.value for i in items)
                base = build(node.value)
                return lambda p: base(p)[key]
        allowed = ", ".join(sorted(FUNCTIONS))
        raise InputError(
            f"parameter '{owner}': tie {text!r}: {ast.unparse(node)!r} is not allowed (use "
            f"numbers, parameter names, + - * / ** %, integer indexing and {allowed})"
        )

    return build(tree.body)


def _tensor(x) -> Tensor:
    """A function's argument as a tensor (numbers become float64 scalars; tensors, complex
    ones included, pass unchanged)."""
    return x if isinstance(x, Tensor) else torch.tensor(float(x), dtype=torch.float64)


class _Recorder(Mapping):
    """The parameter dict as a tie sees it while being checked: refuses unknown names and
    self-reference by name, and has a tie it reads evaluated first (``resolve``)."""

    def __init__(self, values: dict[str, Tensor], ties: dict[str, Tie], owner: str, resolve):
        self.values, self.ties, self.owner, self.resolve = values, ties, owner, resolve
        self.read: list[str] = []

    def __getitem__(self, name: str) -> Tensor:
        if name == self.owner:
            raise InputError(f"parameter '{self.owner}': tie refers to itself")
        if name not in self.values and name not in self.ties:
            known = ", ".join(sorted(n for n in {*self.values, *self.ties} if n != self.owner))
            raise InputError(
                f"parameter '{self.owner}': tie refers to unknown parameter {name!r} "
                f"(known: {known})"
            )
        self.read.append(name)
        if name in self.ties:
            self.resolve(name)
        return self.values[name]

    def __iter__(self):
        return iter({*self.values, *self.ties})

    def __len__(self) -> int:
        return len({*self.values, *self.ties})


def order_ties(ties: dict[str, Tie], values: dict[str, Tensor]) -> list[str]:
    """The tied names in an order where each tie comes after the ties it reads.

    Every tie is evaluated at the starting ``values`` (which it updates with its result):
    unknown names, self-reference and cycles raise :class:`~inversekit.InputError` here,
    before any model call.
    """
    order: list[str] = []
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(name: str) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "open":
            cycle = " -> ".join([*path[path.index(name) :], name])
            raise InputError(f"parameter '{name}': ties form a cycle ({cycle})")
        state[name] = "open"
        path.append(name)
        tie = ties[name]
        recorder = _Recorder(values, ties, name, visit)
        try:
            out = evaluate(tie, recorder)
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - the user's function: report it by name
            raise InputError(f"parameter '{name}': tie failed at the start ({exc})") from None
        tie.depends = tuple(dict.fromkeys(recorder.read))
        values[name] = out
        path.pop()
        state[name] = "done"
        order.append(name)

    for name in ties:
        visit(name)
    return order


def evaluate(tie: Tie, values: Mapping[str, Tensor]) -> Tensor:
    """The tie's value at ``values``; a clear error if it is not a tensor of numbers."""
    out = tie.fn(values)
    if not isinstance(out, Tensor):
        try:
            out = torch.as_tensor(out, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            raise InputError(
                f"parameter '{tie.owner}': tie returned {type(out).__name__}, not a number or "
                "tensor"
            ) from None
    return out
