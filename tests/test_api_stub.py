"""fastact/_api.pyi, which type checkers read, declares every public function
of fastact._api with the signature it has at run time (its elementwise ops
are made at import from fastact._ops)."""
import ast
import inspect
import pathlib

import fastact._api
from fastact import _ops

STUB = pathlib.Path(fastact._api.__file__).with_suffix(".pyi")


def _stub_signatures():
    tree = ast.parse(STUB.read_text())
    return {node.name: node.args for node in tree.body if isinstance(node, ast.FunctionDef)}


def _parameters(args):
    """(name, kind, default) of each parameter of an ast.arguments."""
    kind = inspect.Parameter
    positional = args.posonlyargs + args.args
    defaults = [inspect.Parameter.empty] * (len(positional) - len(args.defaults))
    defaults += [ast.literal_eval(d) for d in args.defaults]
    out = [(a.arg, kind.POSITIONAL_OR_KEYWORD, d) for a, d in zip(positional, defaults)]
    out += [(a.arg, kind.KEYWORD_ONLY,
             inspect.Parameter.empty if d is None else ast.literal_eval(d))
            for a, d in zip(args.kwonlyargs, args.kw_defaults)]
    return out


def test_stub_declares_every_public_function_as_it_is():
    stub = _stub_signatures()
    for name in fastact._api.__all__:
        assert name in stub, f"{name} is missing from {STUB.name}"
        runtime = [(p.name, p.kind, p.default)
                   for p in inspect.signature(getattr(fastact._api, name)).parameters.values()]
        assert _parameters(stub[name]) == runtime, name


def test_every_op_spec_is_public():
    for spec in _ops.OPS:
        for name in (spec.name, spec.name + "_backward"):
            assert name in fastact._api.__all__ and name in fastact.__all__
            assert getattr(fastact, name) is getattr(fastact._api, name)
            assert getattr(fastact._api, name).__module__ == "fastact._api"
