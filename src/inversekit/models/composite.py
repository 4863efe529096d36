r"""Composite models: forward models with their own parameters, added or multiplied.

A :class:`Component` is a forward model ``fn(p, *inputs) -> Tensor`` together with its own
:class:`~inversekit.Params`. :class:`Sum` and :class:`Product` combine named components
into one model under the same contract,

.. math::

    f(p, x) = \sum_c f_c(p_c, x) \quad\text{(Sum)}, \qquad
    f(p, x) = \prod_c f_c(p_c, x) \quad\text{(Product, element by element)},

where every component sees the same ``inputs`` and its outputs broadcast against each
other, so the result carries the units of the components (a sum needs them equal). The
composite's ``params`` is one :class:`~inversekit.Params` whose names are namespaced,
``"<component>.<name>"`` (``"galaxy1.x0"``); ``p_c`` is the parameter dict with the prefix
``"c."`` removed, so each component's function reads its own names. Each namespaced
parameter keeps the component's value, bounds, fixed mask, log scale, prior, unit and
description. Composites nest: a Sum of Products names ``"a.b.x"``.

Composing copies: the composite's ``params`` are built from the components' ``params`` as
they are at that moment, and changing one afterwards does not change the other.

Ties inside a component keep meaning what they meant there: an expression ``"2 * sigma1"``
becomes ``"2 * galaxy1.sigma1"``, a function is wrapped so that it still reads the
component's own names. Parameters are shared between components by a tie on the composite,
``composite.params["galaxy2.x0"].set(tie="galaxy1.x0", bounds=None)``, or with
``shared={"galaxy2.x0": "galaxy1.x0"}`` / :meth:`Composite.share`, which replace the
parameter by the tie; the shared value is then fitted once and both components see it.
"""

from __future__ import annotations

import ast
import keyword
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping

from torch import Tensor

from inversekit.errors import InputError
from inversekit.problem.params import Param, Params
from inversekit.problem.ties import CONSTANTS, dotted_name

__all__ = ["Component", "Composite", "Product", "Sum"]


class Component:
    """A forward model and its own parameters.

    Args:
        fn: the model, ``fn(p, *inputs) -> Tensor`` with ``p`` a dict of parameter tensors.
        params: its :class:`~inversekit.Params` (a mapping of names to :class:`Param` or
            numbers is turned into one).
        name: a label for :meth:`describe` and ``repr`` (default: ``fn``'s name).

    ``a + b`` is ``Sum(c0=a, c1=b)`` and ``a * b`` is ``Product(c0=a, c1=b)``; a chain
    ``a + b + c`` gives ``c0, c1, c2`` (see :class:`Composite`).
    """

    def __init__(self, fn: Callable[..., Tensor], params: Params | Mapping, *, name: str = ""):
        label = name or _label(fn)
        if not callable(fn):
            raise InputError(
                f"Component {label!r}: the model must be callable as fn(p, *inputs), got "
                f"{type(fn).__name__}"
            )
        if params is None:
            raise InputError(f"Component {label!r}: params are required (an ik.Params)")
        if not isinstance(params, Params):
            if not isinstance(params, Mapping):
                raise InputError(
                    f"Component {label!r}: params must be an ik.Params, got {type(params).__name__}"
                )
            params = Params(params)
        self.fn = fn
        self.params = params
        self.name = label

    def __call__(self, p: Mapping[str, Tensor], *inputs) -> Tensor:
        """The model at parameters ``p`` (its own names)."""
        return self.fn(p, *inputs)

    def __add__(self, other: Component) -> Sum:
        return _chain(Sum, self, other)

    def __mul__(self, other: Component) -> Product:
        return _chain(Product, self, other)

    def describe(self) -> str:
        """The model as a tree: each component, its parameters, their ties."""
        return "\n".join(self._tree(self.params, ""))

    def _tree(self, root: Params, prefix: str) -> list[str]:
        names = []
        for n in self.params:
            full = prefix + n
            tied = full in root and full in root.tied_names
            names.append(f"{n} = {root.tie_text(full)}" if tied else n)
        return [f"{self.name}({', '.join(names)})"]

    def _short(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"Component({self.name}: {', '.join(self.params)})"


class Composite(Component, ABC):
    """Named components combined into one model with namespaced parameters.

    ``Sum(galaxy1=a, galaxy2=b, sky=c)`` or ``Sum({"galaxy1": a, ...})``. Components are
    :class:`Component` objects (composites included), or any callable model with a
    ``params`` attribute holding its :class:`~inversekit.Params`. Names must be Python
    identifiers (no dots: the dot separates the levels of a name); ``shared`` is reserved
    as a keyword and can name a component only through the dict.

    Args:
        shared: ``{"galaxy2.x0": "galaxy1.x0"}``: each key's parameter is replaced by a tie
            to the value (a name, an expression or a function, see
            :mod:`inversekit.problem.ties`), keeping its unit and description.

    Component names inside a component may contain dots (a nested composite's do); they are
    prefixed as they are, so a name of the form ``"<component>.<rest>"`` always belongs to
    ``<component>``. Parameters added to ``params`` outside every component (``"x0"``) are
    passed to no component but can be the target of ties (``"galaxy1.x0"`` tied to
    ``"x0"``).
    """

    symbol = ""

    def __init__(
        self,
        components: Mapping[str, object] | None = None,
        /,
        *,
        shared: Mapping[str, object] | None = None,
        **named: object,
    ):
        given = dict(components or {})
        for name in named:
            if name in given:
                raise InputError(f"{type(self).__name__}: component {name!r} is given twice")
        given.update(named)
        self._setup(given, shared, base=None)

    def _setup(self, given: dict, shared, base: Params | None) -> None:
        kind = type(self).__name__
        if not given:
            raise InputError(f"{kind}: give at least one component")
        components = {}
        for name, comp in given.items():
            _check_name(kind, name)
            components[name] = _as_component(kind, name, comp)
        self.components: dict[str, Component] = components
        self.fn = self._evaluate
        self.name = kind
        self._automatic = False
        self.params = _namespaced(kind, components, base)
        for target, source in (shared or {}).items():
            self.share(target, source)

    def share(self, target: str, source) -> None:
        """Replace parameter ``target`` by a tie to ``source`` (a name such as
        ``"galaxy1.x0"``, an expression, or a function of the parameter dict): the two
        components then see one fitted value. Bounds, fixed mask, log scale and prior of
        ``target`` are dropped (the tie defines it); unit and description are kept."""
        if target not in self.params:
            known = ", ".join(self.params)
            raise InputError(
                f"{self.name}: cannot share {target!r}: no such parameter (known: {known})"
            )
        old = self.params[target]
        self.params[target] = Param(tie=source, unit=old.unit, description=old.description)

    def _evaluate(self, p: Mapping[str, Tensor], *inputs) -> Tensor:
        out = None
        for name, comp in self.components.items():
            value = comp(_own(p, name + "."), *inputs)
            out = value if out is None else self._combine(out, value)
        return out

    @staticmethod
    @abstractmethod
    def _combine(a: Tensor, b: Tensor) -> Tensor:
        """How two components' outputs combine (a sum, a product)."""

    def __call__(self, p: Mapping[str, Tensor], *inputs) -> Tensor:
        """The combined model at the namespaced parameters ``p``."""
        return self._evaluate(p, *inputs)

    def _tree(self, root: Params, prefix: str) -> list[str]:
        lines = [self.name]
        items = list(self.components.items())
        for i, (name, comp) in enumerate(items):
            last = i == len(items) - 1
            sub = comp._tree(root, f"{prefix}{name}.")
            lines.append(("└─ " if last else "├─ ") + f"{name}: {sub[0]}")
            lines += [("   " if last else "│  ") + line for line in sub[1:]]
        if not prefix:
            outside = [n for n in root if n.split(".", 1)[0] not in self.components]
            if outside:
                lines.append(f"(outside the components: {', '.join(outside)})")
        return lines

    def _short(self) -> str:
        inner = ", ".join(f"{n}={c._short()}" for n, c in self.components.items())
        return f"{self.name}({inner})"

    def __repr__(self) -> str:
        return self._short()


class Sum(Composite):
    """The sum of named components: ``f = Σ_c f_c(p_c, *inputs)`` (see :class:`Composite`)."""

    @staticmethod
    def _combine(a: Tensor, b: Tensor) -> Tensor:
        return a + b


class Product(Composite):
    """The product of named components, element by element with broadcasting:
    ``f = Π_c f_c(p_c, *inputs)`` (see :class:`Composite`)."""

    @staticmethod
    def _combine(a: Tensor, b: Tensor) -> Tensor:
        return a * b


# --- building ---------------------------------------------------------------------------


def _label(fn) -> str:
    name = getattr(fn, "__name__", type(fn).__name__)
    return "component" if name == "<lambda>" else name


def _check_name(kind: str, name) -> None:
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise InputError(
            f"{kind}: component name {name!r} must be a Python identifier without dots "
            "(parameters are named '<component>.<name>')"
        )


def _as_component(kind: str, name: str, comp) -> Component:
    if isinstance(comp, Component):
        return comp
    if not callable(comp):
        raise InputError(
            f"{kind}: component {name!r} is not a model: give ik.Component(fn, params), got "
            f"{type(comp).__name__}"
        )
    params = getattr(comp, "params", None)
    if not isinstance(params, Params):
        raise InputError(
            f"{kind}: component {name!r} has no params: wrap the model as "
            f"ik.Component({_label(comp)}, params)"
        )
    return Component(comp, params, name=_label(comp))


def _namespaced(kind: str, components: dict[str, Component], base: Params | None) -> Params:
    """One Params holding every component's parameters as ``"<component>.<name>"``."""
    first = next(iter(components.values())).params
    items: dict[str, Param] = {}
    if base is not None:  # a chain a + b + c keeps what was set on a + b
        items.update({n: base[n].copy() for n in base})
    for cname, comp in components.items():
        own = comp.params
        if own.dtype != first.dtype:
            raise InputError(
                f"{kind}: component {cname!r} has {own.dtype} parameters, the first component "
                f"{first.dtype}; give every component the same dtype"
            )
        for n in own:
            full = f"{cname}.{n}"
            if full not in items:
                items[full] = own[n].copy(tie=_scoped_tie(own[n].tie, cname, own))
    return Params(items, dtype=first.dtype, device=first.device)


def _chain(cls: type[Composite], left: Component, right) -> Composite:
    """``left + right`` (or ``*``): automatic names ``c0, c1, ...``; a left operand made by
    the same operator is extended rather than nested."""
    if not isinstance(right, Component):
        return NotImplemented
    out = cls.__new__(cls)
    if type(left) is cls and left._automatic:
        given = {**left.components, f"c{len(left.components)}": right}
        out._setup(given, None, base=left.params)
    else:
        out._setup({"c0": left, "c1": right}, None, base=None)
    out._automatic = True
    return out


# --- evaluation -------------------------------------------------------------------------


def _own(p: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """The entries of ``p`` under ``prefix``, with the prefix removed."""
    n = len(prefix)
    return {k[n:]: v for k, v in p.items() if k.startswith(prefix)}


# --- ties -------------------------------------------------------------------------------


def _scoped_tie(tie, component: str, own: Params):
    """A component's tie as the composite sees it: names in an expression prefixed with
    ``"<component>."``, a function given the component's view of the parameter dict."""
    if tie is None:
        return None
    prefix = component + "."
    if isinstance(tie, str):
        return _renamed(tie, prefix, set(own))
    return _ScopedTie(tie, prefix)


class _Rename(ast.NodeTransformer):
    """Prefix the parameter names of an expression; constants and functions stay."""

    def __init__(self, prefix: str, names: set[str]):
        self.prefix, self.names = prefix, names

    def visit_Call(self, node: ast.Call) -> ast.AST:
        # the function's name is not a parameter, even if a parameter has that name
        node.args = [self.visit(a) for a in node.args]
        return node

    def _name(self, node: ast.AST) -> ast.AST:
        name = dotted_name(node)
        if name is None:
            return self.generic_visit(node)
        if isinstance(node, ast.Name) and name in CONSTANTS:
            return node  # ties read a bare ``pi`` or ``e`` as the constant
        if name in self.names:
            return ast.copy_location(ast.Name(id=self.prefix + name, ctx=ast.Load()), node)
        return node

    visit_Name = _name
    visit_Attribute = _name


def _renamed(text: str, prefix: str, names: set[str]) -> str:
    tree = ast.parse(text.strip(), mode="eval")  # valid: the component's Params parsed it
    return ast.unparse(_Rename(prefix, names).visit(tree))


class _ScopedTie:
    """A component's tie function, called with the component's view of the dict."""

    def __init__(self, fn: Callable, prefix: str):
        self.fn, self.prefix = fn, prefix
        self.__name__ = getattr(fn, "__name__", "function")

    def __call__(self, p: Mapping[str, Tensor]):
        return self.fn(_View(p, self.prefix))


class _View(Mapping):
    """``p`` as one component sees it: ``view["x0"]`` is ``p["<component>.x0"]``."""

    __slots__ = ("_p", "_prefix")

    def __init__(self, p: Mapping[str, Tensor], prefix: str):
        self._p, self._prefix = p, prefix

    def __getitem__(self, name: str) -> Tensor:
        return self._p[self._prefix + name]

    def __iter__(self) -> Iterator[str]:
        n = len(self._prefix)
        return (k[n:] for k in self._p if k.startswith(self._prefix))

    def __len__(self) -> int:
        return sum(1 for _ in self)
