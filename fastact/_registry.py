"""Activations by name: canonical names, the usual PyTorch/Keras spellings, a
did-you-mean for unknown names, and custom activations.

Names are matched ignoring case, underscores, hyphens and spaces, so
'LeakyReLU', 'leaky_relu', 'leaky-relu' and 'Leaky ReLU' are one name.

>>> import numpy as np, fastact
>>> m = fastact.get("LeakyReLU", negative_slope=0.2)
>>> m
LeakyReLU(negative_slope=0.2, inplace=False)
>>> m(np.array([-1.0, 2.0]))
array([-0.2,  2. ])
>>> fastact.get("lreul")    # doctest: +ELLIPSIS
Traceback (most recent call last):
    ...
ValueError: unknown activation 'lreul'; did you mean 'lrelu' (leaky_relu)? Known activations: ...
"""
import difflib
import inspect
import threading

from . import _modules

__all__ = ["get", "available", "register"]

# canonical name -> (module class, other spellings, before normalisation)
_BUILTINS = {
    "leaky_relu": (_modules.LeakyReLU, ("LeakyReLU", "lrelu", "leaky")),
    "relu": (_modules.ReLU, ("ReLU",)),
    "relu6": (_modules.ReLU6, ("ReLU6",)),
    "thresholded_relu": (_modules.ThresholdedReLU, ("ThresholdedReLU",)),
    "elu": (_modules.ELU, ("ELU",)),
    "hardtanh": (_modules.Hardtanh, ("Hardtanh",)),
    "square": (_modules.Square, ()),
    "prelu": (_modules.PReLU, ("PReLU", "PRelu")),
}

_lock = threading.Lock()
_spellings = {}     # normalised spelling -> canonical name
_custom = {}        # canonical name -> (forward, backward)


def _normalise(name):
    return "".join(c for c in name.lower() if c not in "_- ")


for _canonical, (_cls, _others) in _BUILTINS.items():
    for _spelling in (_canonical,) + _others:
        _spellings[_normalise(_spelling)] = _canonical
del _canonical, _cls, _others, _spelling


def available():
    """The canonical names ``get`` accepts, built-in and registered, sorted.

    Other spellings of the built-ins are accepted too: names are matched
    ignoring case, underscores, hyphens and spaces ('LeakyReLU', 'leaky-relu'),
    and 'lrelu' is leaky_relu.

    Examples
    --------
    >>> import fastact
    >>> names = fastact.available()   # elu, leaky_relu, prelu, relu, relu6, ...
    >>> "leaky_relu" in names and "LeakyReLU" not in names
    True
    """
    with _lock:
        return sorted(set(_spellings.values()))


def _unknown(name):
    key = _normalise(name)
    with _lock:
        spellings = dict(_spellings)
    known = sorted(set(spellings.values()))
    hint = "."
    close = difflib.get_close_matches(key, list(spellings), n=1, cutoff=0.6)
    if close:
        canonical = spellings[close[0]]
        if close[0] == _normalise(canonical):
            hint = f"; did you mean {canonical!r}?"
        else:
            # name the spelling that matched, in the form it was registered
            shown = next((s for s in (canonical,) + _BUILTINS.get(canonical, (None, ()))[1]
                          if _normalise(s) == close[0]), close[0])
            hint = f"; did you mean {shown!r} ({canonical})?"
    return ValueError(f"unknown activation {name!r}{hint} Known activations: "
                      f"{', '.join(known)} (see fastact.available())")


def _accepted(cls_or_fns):
    """Keyword parameters a built-in's constructor, or a custom's callables, take."""
    if isinstance(cls_or_fns, type):
        sig = inspect.signature(cls_or_fns.__init__)
        return [p.name for p in list(sig.parameters.values())[1:]
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)], False
    names, open_ended = [], False
    for fn, skip in zip(cls_or_fns, (1, 2)):     # forward(x, ...), backward(g, x, ...)
        try:
            params = list(inspect.signature(fn).parameters.values())[skip:]
        except (TypeError, ValueError):          # no signature to read
            return [], True
        for p in params:
            if p.kind == p.VAR_KEYWORD:
                open_ended = True
            elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in names:
                names.append(p.name)
    return names, open_ended


def get(name, **params):
    """The activation called ``name``, as a module with the given parameters.

    Parameters
    ----------
    name : str
        A canonical name (see :func:`available`) or a usual PyTorch/Keras
        spelling: 'leaky_relu', 'LeakyReLU', 'lrelu', 'relu', 'ReLU6', 'elu',
        'thresholded_relu', 'prelu', 'PReLU', 'square', or a name given to
        :func:`register`.  Case, underscores, hyphens and spaces are ignored.
    **params
        The module's parameters (``negative_slope=``, ``alpha=``, ...) and
        ``inplace=``; for a registered activation, keyword arguments passed to
        its callables on every call.

    Returns
    -------
    Activation
        A module: ``forward(x, *, out=None)`` (also ``m(x)``), ``backward``,
        the stateless ``function`` and ``gradient``; in place when
        ``inplace=True``.

    Raises
    ------
    ValueError
        For an unknown name, listing the known names and suggesting the
        closest one.
    TypeError
        For a parameter the activation does not take, naming the ones it does.

    Examples
    --------
    >>> import numpy as np, fastact
    >>> m = fastact.get("relu6")
    >>> m(np.array([-1.0, 3.0, 7.0]))
    array([0., 3., 6.])
    >>> fastact.get("elu", alpha=0.5)
    ELU(alpha=0.5, inplace=False)
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    with _lock:
        canonical = _spellings.get(_normalise(name))
        custom = _custom.get(canonical)
    if canonical is None:
        raise _unknown(name)
    if custom is None:
        cls = _BUILTINS[canonical][0]
        accepted, open_ended = _accepted(cls)
    else:
        accepted, open_ended = _accepted(custom)
    for key in params:
        if key != "inplace" and key not in accepted and not open_ended:
            takes = ", ".join(p for p in accepted if p != "inplace")
            takes = f"takes {takes} and inplace" if takes else "takes only inplace"
            raise TypeError(f"activation {canonical!r} has no parameter {key!r}; it {takes}")
    if custom is None:
        return cls(**params)
    inplace = params.pop("inplace", False)
    return _modules.Custom(canonical, custom[0], custom[1], params, inplace=inplace)


def register(name, forward, backward, *, replace=False):
    """Make a custom elementwise activation usable like a built-in one.

    Parameters
    ----------
    name : str
        The name for :func:`get` (matched ignoring case, underscores, hyphens
        and spaces).  Built-in names and their spellings cannot be taken.
    forward : callable
        ``forward(x, **params) -> y``: a numpy array of x's shape and dtype.
    backward : callable
        ``backward(grad_output, x, **params) -> grad_input``: a numpy array of
        x's shape and dtype.
    replace : bool, default False
        Replace an activation registered earlier under this name.

    Notes
    -----
    ``get(name, **params)`` returns a module whose ``forward``, ``backward``,
    ``function`` and ``gradient`` call these with numpy arrays of a supported
    dtype, check each result (a numpy array of x's shape and dtype, else
    TypeError or ValueError naming the callable) and only then copy it into
    ``out=`` or, in place, into the input: nothing is written when a check
    fails.  An in-place module cannot run backward (the input it needs is
    overwritten).

    Examples
    --------
    >>> import numpy as np, fastact
    >>> fastact.register("cube", lambda x: x ** 3, lambda g, x: g * 3 * x ** 2,
    ...                  replace=True)   # replace=True: this example can run twice
    >>> m = fastact.get("cube")
    >>> m(np.array([-1.0, 2.0]))
    array([-1.,  8.])
    >>> m.backward(np.ones(2))
    array([ 3., 12.])
    >>> fastact.register("cube", np.square, np.square)
    Traceback (most recent call last):
        ...
    ValueError: an activation named 'cube' is already registered; pass replace=True to replace it
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    key = _normalise(name)
    if not key:
        raise ValueError(f"name must have a letter or a digit, got {name!r}")
    for what, fn in (("forward", forward), ("backward", backward)):
        if not callable(fn):
            raise TypeError(f"{what} must be callable, got {type(fn).__name__}")
    with _lock:
        taken = _spellings.get(key)
        if taken in _BUILTINS:
            raise ValueError(f"{name!r} names the built-in activation {taken!r}, "
                             f"which cannot be replaced; choose another name")
        if taken is not None and not replace:
            raise ValueError(f"an activation named {taken!r} is already registered; "
                             f"pass replace=True to replace it")
        if taken is not None:
            del _custom[taken]
        _spellings[key] = name
        _custom[name] = (forward, backward)


def _unregister(name):
    """Remove a registered activation (for tests)."""
    with _lock:
        canonical = _spellings.get(_normalise(name))
        if canonical is None or canonical in _BUILTINS:
            raise ValueError(f"no registered activation {name!r}")
        del _spellings[_normalise(name)]
        del _custom[canonical]
