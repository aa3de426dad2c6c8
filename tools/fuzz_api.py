"""Coverage-guided fuzzing of fastact's public API.

Each input (a byte string) is decoded into one call: an op (prelu,
prelu_backward, affine_prelu, batchnorm_scale_shift, every op of the family
and its backward, a module's forward and backward, a lookup by name), x of a
dtype fastact takes or one it refuses, a shape (0-size ones, and declared
sizes of 2**41 elements and more made with broadcast_to / as_strided so that
nothing that large is allocated), a layout (contiguous, transposed, strided,
negative strides, stride 0, misaligned, byte-swapped, read-only), parameters
and slopes of every form the API takes and many it refuses, and a
destination (new, out= of every kind including ones overlapping an input,
inplace=True).  Every call is checked for:

- an exception: one the API documents (TypeError or ValueError, RuntimeError
  for a module's backward before its forward, MemoryError only for the
  declared sizes nothing could hold), whose message names an argument, and
  not a byte written to any array passed in;
- a result: the arrays not written to unchanged, the result where the API
  says (out, x or grad_output itself), and equal to the float64 oracle of
  fastact._reference rounded as the README says: bitwise, or within 1 ulp
  for elu, within 2 ulp for relu with both a slope and a threshold, and the
  slope gradient within the summation's error.

Run (atheris drives it, with coverage of fastact's Python modules):

    python tools/fuzz_api.py --unpack tools/fuzz_corpus.hex corpus
    python tools/fuzz_api.py -max_total_time=60 corpus

Any libFuzzer flag works (-runs=N, -timeout=S, -print_final_stats=1).
Without atheris, ``--random N [SEED [SECONDS]]`` runs N inputs of random
bytes (at most SECONDS), and
``--replay FILE_OR_DIR...`` runs saved inputs (for coverage.py, or to debug
a crash: the failing input is in crash-<hash>).  tools/fuzz_corpus.hex is
the corpus of the runs so far, one input a line in hex: ``--replay`` takes
it as it is, ``--unpack tools/fuzz_corpus.hex DIR`` makes the files
libFuzzer starts from.  Under the sanitizer build,
run it as the README's "Hardening" section says.
"""
import math
import os
import sys

import numpy as np

HUGE = 2 ** 41          # declared elements no allocator can hold (8 TiB of float32)
MAX_ELEMENTS = 4096     # real data is kept small: many cases a second


class Input:
    """Decodes the fuzzer's bytes; past the end every read gives 0."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def byte(self):
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def int(self, n):
        """0 .. n-1."""
        if n <= 1:
            return 0
        v = self.byte()
        if n > 256:
            v = v << 8 | self.byte()
        return v % n

    def pick(self, seq):
        return seq[self.int(len(seq))]

    def bool(self):
        return self.byte() & 1 == 1

    def seed(self):
        return int.from_bytes(bytes(self.byte() for _ in range(4)), "little")


SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, 6.0, -6.0, 1e-7, -1e-7, 1e-30, -1e-30,
           1e-45, 65504.0, 70000.0, 3e38, -3e38, 1e300, math.inf, -math.inf, math.nan,
           0.25, 0.01, 1.205321, -2.0, 3.5, 30.0, -100.0, -800.0]


def real_value(inp):
    """A parameter or slope value: mostly fine ones, sometimes special."""
    k = inp.int(8)
    if k < 4:
        return inp.pick(SPECIAL)
    if k < 7:
        return (inp.int(4001) - 2000) / 500.0
    return float(np.frombuffer(bytes(inp.byte() for _ in range(8)), np.float64)[0])


def param_value(inp, name):
    """A value for a scalar parameter, of any form the API may be given."""
    v = real_value(inp)
    form = inp.int(16)
    if form < 9:
        return v
    if form == 9:
        return int(v) if math.isfinite(v) else 10 ** 400
    if form == 10:
        return np.float32(v)
    if form == 11:
        return np.array(v)
    if form == 12:
        return np.float16(v)
    bad = [True, None, "1.0", complex(1, 1), [v], np.array([v, v]), np.int8(3),
           object(), 10 ** 400, -(10 ** 400), np.bool_(False)]
    return inp.pick(bad)


# ---------------------------------------------------------------- dtypes
def _dtypes():
    valid = [np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16)]
    try:
        import ml_dtypes
        valid.append(np.dtype(ml_dtypes.bfloat16))
    except ImportError:
        pass
    swapped = [np.dtype(">f4"), np.dtype(">f8")]
    invalid = [np.dtype(t) for t in (np.int32, np.int64, np.uint8, np.bool_, np.complex64,
                                     np.longdouble, object)]
    return valid, swapped, invalid


VALID, SWAPPED, INVALID = _dtypes()


def choose_dtype(inp):
    k = inp.int(16)
    if k < 12:
        return VALID[k % len(VALID)]
    if k < 14:
        return inp.pick(SWAPPED)
    return inp.pick(INVALID)


def compute_dtype(dtype):
    return np.dtype(np.float64) if dtype.kind == "f" and dtype.itemsize == 8 \
        else np.dtype(np.float32)


# ---------------------------------------------------------------- arrays
class Arrays:
    """Every buffer the case made, to check afterwards which were written."""

    def __init__(self):
        self.buffers = []

    def buffer(self, nbytes):
        b = np.zeros(max(nbytes, 1) + 16, np.uint8)
        self.buffers.append(b)
        return b

    def snapshot(self):
        return [b.tobytes() for b in self.buffers]

    def changed(self, before):
        return [i for i, (b, s) in enumerate(zip(self.buffers, before)) if b.tobytes() != s]


def values(inp, rng, n, dtype):
    """n values of dtype: normal data with special values sprinkled in."""
    if dtype.hasobject:
        return np.array([float(v) for v in rng.standard_normal(n)], dtype=object)
    scale = inp.pick([1.0, 4.0, 1e-3, 1e4, 1e-40])
    v = rng.standard_normal(n) * scale
    if n:
        k = min(n, inp.int(8))
        v[rng.integers(0, n, k)] = rng.choice(np.array(SPECIAL), k)
    with np.errstate(all="ignore"):
        if dtype.kind == "c":
            return v.astype(dtype)
        if dtype.kind in "iub":
            return np.nan_to_num(v).clip(-100, 100).astype(dtype)
        return v.astype(dtype)


def choose_shape(inp):
    ndim = inp.pick([1, 2, 2, 3, 3, 4, 4, 5, 0, 6])
    dims = [inp.pick([1, 2, 3, 4, 5, 7, 8, 16, 0, 33]) for _ in range(ndim)]
    while math.prod(dims) > MAX_ELEMENTS:
        dims[dims.index(max(dims))] //= 2
    if inp.int(32) == 0 and ndim >= 1:                 # a larger one: threads, chunks
        dims = [1] * (ndim - 1) + [70001]
    return tuple(dims)


def place(arrays, data, inp, rng, writable_hint=True):
    """data (a contiguous array) put into a buffer of our own in some layout;
    returns an array with data's values (or a huge declared view of them)."""
    dtype = data.dtype
    layout = inp.int(16)
    if dtype.hasobject:
        return data.copy()
    if layout == 0 and data.ndim >= 2:                 # transposed (Fortran order)
        buf = arrays.buffer(data.nbytes)
        a = np.frombuffer(buf, dtype, data.size, 0).reshape(data.shape[::-1]).T
        a = a.view()
        a.flags.writeable = True if buf.flags.writeable else False
        a[...] = data
        return a
    if layout == 1 and data.ndim >= 1:                 # every other element
        shape = data.shape[:-1] + (data.shape[-1] * 2,)
        buf = arrays.buffer(math.prod(shape) * dtype.itemsize)
        a = np.frombuffer(buf, dtype, math.prod(shape)).reshape(shape)[..., ::2]
        a[...] = data
        return a
    if layout == 2 and data.ndim >= 1:                 # negative strides
        buf = arrays.buffer(data.nbytes)
        a = np.frombuffer(buf, dtype, data.size).reshape(data.shape)[::-1]
        a[...] = data
        return a
    if layout == 3 and data.ndim >= 1 and data.shape[0] >= 1:    # stride 0 (broadcast)
        one = data[:1]
        buf = arrays.buffer(one.nbytes)
        a = np.frombuffer(buf, dtype, one.size).reshape(one.shape)
        a[...] = one
        return np.broadcast_to(a, data.shape)
    if layout == 4 and dtype.itemsize > 1:             # misaligned
        buf = arrays.buffer(data.nbytes + 1)
        a = np.ndarray(data.shape, dtype, buffer=buf.data, offset=1)
        a[...] = data
        return a
    if layout == 5:                                    # read-only
        buf = arrays.buffer(data.nbytes)
        a = np.frombuffer(buf, dtype, data.size).reshape(data.shape)
        a[...] = data
        a.flags.writeable = False
        return a
    if layout == 6:                                    # huge declared size, stride 0
        buf = arrays.buffer(dtype.itemsize)
        base = np.frombuffer(buf, dtype, 1)
        base[...] = data.reshape(-1)[:1] if data.size else 0
        shape = (HUGE,) + data.shape[1:] if data.ndim else (HUGE,)
        if inp.bool():
            shape = data.shape[:1] + (HUGE,) + data.shape[2:] if data.ndim >= 2 else shape
        writeable = inp.bool()
        try:
            return np.lib.stride_tricks.as_strided(base, shape, (0,) * len(shape),
                                                   writeable=writeable)
        except ValueError:          # more bytes than numpy can describe
            return np.lib.stride_tricks.as_strided(base, (HUGE,), (0,), writeable=writeable)
    buf = arrays.buffer(data.nbytes)
    a = np.frombuffer(buf, dtype, data.size).reshape(data.shape)
    a[...] = data
    return a


def declared_huge(*arrays):
    return any(isinstance(a, np.ndarray) and a.size >= HUGE for a in arrays)


# ---------------------------------------------------------------- slopes
def slopes_for(inp, rng, x_shape, channel_axis, name="slopes"):
    """PReLU's slopes (or affine_prelu's scale/shift/slopes) of every form."""
    ndim = len(x_shape)
    c = x_shape[channel_axis % ndim] if ndim >= 2 and channel_axis in (1, -1) else 1
    if c > MAX_ELEMENTS:            # a declared huge axis: slopes that cannot fit it
        c = 3
    x_shape = tuple(min(d, MAX_ELEMENTS) for d in x_shape)
    k = inp.int(16)
    sdt = inp.pick([np.float32, np.float64, np.float16, np.float32, np.int32])
    with np.errstate(all="ignore"):
        if k < 3:
            return param_value(inp, name) if k == 0 else real_value(inp)
        if k < 7:
            v = rng.uniform(-3, 3, c)
            if inp.int(8) == 0 and c:
                v[inp.int(c)] = inp.pick([math.nan, math.inf, 1e39, -0.0])
            return v.astype(sdt) if k != 6 else v.tolist()
        if k == 7:
            return rng.uniform(-3, 3, c + inp.pick([1, -1, 2]) if c else 1).astype(sdt)
        if k == 8 and ndim >= 2:                        # (C, 1, 1, ...) broadcast
            shape = list(x_shape[1:])
            for i in range(1, len(shape)):
                shape[i] = 1 if inp.bool() else shape[i]
            return rng.uniform(-3, 3, shape).astype(sdt)
        if k == 9 and ndim >= 2:                        # a suffix of x.shape[1:]
            feat = x_shape[1:]
            shape = feat[inp.int(len(feat)):] or (1,)
            shape = tuple(1 if inp.int(3) == 0 else d for d in shape)
            return rng.uniform(-3, 3, shape).astype(sdt)
        if k == 10:                                     # one value of any shape
            return np.full((1,) * inp.int(4), real_value(inp)).astype(sdt)
        if k == 11:                                     # a non-broadcasting shape
            return rng.uniform(-3, 3, (c + 1, 2)).astype(sdt)
        if k == 12:
            return np.float32(real_value(inp))
        if k == 13:                                     # a view with strides
            return rng.uniform(-3, 3, 2 * c)[::-2].astype(sdt)
        return inp.pick([None, "0.25", [[0.5]], [], object(), np.zeros(0), True])


def channel_axis_value(inp):
    return inp.pick([1, 1, 1, -1, -1, 0, 2, True, 1.0, np.int64(-1), "1", None])


# ---------------------------------------------------------------- ops
def family_specs():
    from fastact import _ops
    return {spec.name: spec for spec in _ops.OPS}


def run_case(data):
    with np.errstate(all="ignore"):
        _run_case(data)


def _run_case(data):
    import fastact
    from fastact import _ops, _reference

    inp = Input(data)
    rng = np.random.default_rng(inp.seed())
    arrays = Arrays()
    specs = family_specs()
    skip = os.environ.get("FUZZ_SKIP", "").split(",")
    ops = (["prelu", "prelu_backward", "affine_prelu", "batchnorm_scale_shift", "module",
            "get"] + [n for n in specs] + [n + "_backward" for n in specs])
    opname = inp.pick([o for o in ops if o not in skip])
    dtype = choose_dtype(inp)
    shape = choose_shape(inp)
    x0 = values(inp, rng, math.prod(shape), dtype).reshape(shape)
    x = place(arrays, x0, inp, rng)
    backward = opname.endswith("_backward")
    g = None
    if backward:
        gdt = dtype if inp.int(8) else choose_dtype(inp)
        gshape = shape if inp.int(8) else choose_shape(inp)
        g = place(arrays, values(inp, rng, math.prod(gshape), gdt).reshape(gshape), inp, rng)
        if inp.int(16) == 0:
            g = x                                      # the same array as both
    case = Case(fastact, _reference, _ops, specs, inp, rng, arrays, opname, x, g)
    LAST_CASE[:] = [opname]
    case.run()


# the words an error message may name its argument by
ARG_WORDS = ("x ", "x has", "x is", "x'", "x,", "grad_output", "slopes", "out", "inplace",
             "channel_axis", "scale", "shift", "running_mean", "running_var", "weight",
             "bias", "eps", "negative_slope", "max_value", "threshold", "theta", "alpha",
             "min_val", "max_val", "init", "channels", "dtype", "name", "activation",
             "stream", "backward", "forward", "slopes_shape", "shared", "x:")


class PropertyFailed(AssertionError):
    pass


class Case:
    def __init__(self, fastact, reference, ops, specs, inp, rng, arrays, opname, x, g):
        self.fa, self.ref, self.ops, self.specs = fastact, reference, ops, specs
        self.inp, self.rng, self.arrays = inp, rng, arrays
        self.opname, self.x, self.g = opname, x, g

    # -- destination
    def destination(self, like):
        """(out, inplace) of every kind."""
        inp, arrays = self.inp, self.arrays
        k = inp.int(16)
        if k < 5 or not isinstance(like, np.ndarray):
            return None, False
        if k < 7:
            return None, True
        if k < 9:
            return self.place_out(like), False
        if k == 9:
            return like, False
        if k == 10 and self.g is not None:
            return self.g, inp.bool()
        if k == 11 and like.size >= 2 and like.ndim >= 1 and not declared_huge(like):
            # a view overlapping `like` partially (shifted by one element)
            buf = arrays.buffer((like.size + 1) * like.dtype.itemsize)
            base = np.frombuffer(buf, like.dtype if not like.dtype.hasobject else np.float32,
                                 like.size + 1)
            return base[1:].reshape(like.shape), False
        if k == 12:                                    # wrong dtype or shape
            dt = inp.pick(VALID + INVALID)
            shape = like.shape if inp.bool() else like.shape + (1,)
            if declared_huge(like):
                return None, False
            return np.zeros(shape, dt), False
        if k == 13 and like.ndim >= 1 and not declared_huge(like):
            # writeable, stride 0 on one axis: the output overlaps itself
            buf = arrays.buffer(like.dtype.itemsize * max(like.size, 1))
            base = np.frombuffer(buf, like.dtype if not like.dtype.hasobject else np.float32,
                                 max(like.size, 1))
            strides = (0,) + tuple(s for s in np.empty(like.shape, base.dtype).strides[1:])
            return np.lib.stride_tricks.as_strided(base, like.shape, strides,
                                                   writeable=True), False
        if k == 14:
            return inp.pick([[0.0], "out", 3]), inp.bool()
        return self.place_out(like), True             # both out= and inplace=True

    def place_out(self, like):
        if declared_huge(like) or like.dtype.hasobject:
            return None
        return place(self.arrays, np.zeros(like.shape, like.dtype), self.inp, self.rng)

    # -- the call
    def run(self):
        op = self.opname
        self.copies = {}
        if op == "module":
            return self.run_module()
        if op == "get":
            return self.run_get()
        if op == "batchnorm_scale_shift":
            return self.run_batchnorm()
        out, inplace = self.destination(self.g if self.g is not None else self.x)
        self.out, self.inplace = out, inplace
        kwargs = {}
        if out is not None:
            kwargs["out"] = out
        if inplace:
            kwargs["inplace"] = True
        if self.inp.int(32) == 0:
            kwargs["stream"] = self.inp.pick([0, 1, "default"])
        if op in ("prelu", "prelu_backward", "affine_prelu"):
            ca = channel_axis_value(self.inp)
            if ca != 1 or self.inp.bool():
                kwargs["channel_axis"] = ca
            ca_int = ca if type(ca) is int or isinstance(ca, np.integer) else 1
            s = slopes_for(self.inp, self.rng, self.x.shape, int(ca_int))
            if op == "affine_prelu":
                scale = slopes_for(self.inp, self.rng, self.x.shape, int(ca_int), "scale")
                shift = slopes_for(self.inp, self.rng, self.x.shape, int(ca_int), "shift")
                args = (self.x, scale, shift, s)
            elif op == "prelu":
                args = (self.x, s)
            else:
                args = (self.g, self.x, s)
            fn = getattr(self.fa, op)
        else:
            name = op[:-len("_backward")] if op.endswith("_backward") else op
            spec = self.specs[name]
            params = []
            for p in spec.params:
                if self.inp.int(3) == 0:
                    break                                # the defaults from here on
                params.append(param_value(self.inp, p.name) if self.inp.int(4)
                              else p.default)
            args = ((self.g, self.x) if op.endswith("_backward") else (self.x,)) \
                + tuple(params)
            fn = getattr(self.fa, op)
        self.call(fn, args, kwargs)

    def call(self, fn, args, kwargs, check=None):
        """Calls fn, checking the exception or (check) the result."""
        LAST_CASE[:] = [describe_call(fn.__name__, args, kwargs)]
        before = self.arrays.snapshot()
        logical = [np.array(a, copy=True) if isinstance(a, np.ndarray) and
                   not declared_huge(a) else a for a in args]
        try:
            result = fn(*args, **kwargs)
        except (TypeError, ValueError, MemoryError) as exc:
            self.check_error(exc, before, args, kwargs)
            return None
        self.check_result(fn.__name__, result, args, logical, kwargs, before, check)
        return result

    def check_error(self, exc, before, args, kwargs):
        changed = self.arrays.changed(before)
        if changed:
            raise PropertyFailed(f"{type(exc).__name__} ({exc}) but buffers {changed} were "
                                 f"written") from exc
        if isinstance(exc, MemoryError):
            if not declared_huge(*args, kwargs.get("out")):
                raise PropertyFailed("MemoryError for arrays of at most "
                                     f"{MAX_ELEMENTS * 20} elements") from exc
            return
        msg = str(exc)
        if not any(w in msg for w in ARG_WORDS):
            raise PropertyFailed(f"{type(exc).__name__} names no argument: {msg!r}") from exc

    # -- results
    def check_result(self, name, result, args, logical, kwargs, before, check):
        out, inplace = kwargs.get("out"), kwargs.get("inplace", False)
        if declared_huge(*args, out):
            raise PropertyFailed(f"{name} of a declared size of {HUGE}+ elements returned")
        backward = name.endswith("_backward")
        x_index = 1 if backward else 0
        target = args[0] if inplace else out
        gi = result[0] if name == "prelu_backward" else result
        if target is not None and gi is not target:
            raise PropertyFailed(f"{name} returned a new array, not the out/inplace target")
        if check is not None:
            check(result, logical)
        else:
            self.check_values(name, result, logical, args, kwargs)
        # arrays that are not the destination are unchanged
        written = target if target is not None else None
        for a, copy in zip(args, logical):
            if isinstance(a, np.ndarray) and a is not written and not (
                    written is not None and np.shares_memory(a, written)):
                if a.tobytes() != copy.tobytes():
                    raise PropertyFailed(f"{name} wrote to an input it was not given to write")
        del x_index

    def expected(self, name, logical, kwargs):
        """(want, tolerance kind, grad_slopes want) from the oracle."""
        x = logical[1] if name.endswith("_backward") else logical[0]
        dtype = x.dtype
        c = compute_dtype(dtype)
        ref = self.ref

        def rc(v):      # a parameter as the kernels hold it
            return float(c.type(v))

        def lay(s):     # slopes/scale/shift as the kernels hold them
            if isinstance(s, (list, np.ndarray)):
                return np.asarray(s).astype(c).astype(np.float64)
            return np.float64(rc(float(s)))

        with np.errstate(all="ignore"):
            x64 = x.astype(np.float64)
            ca = kwargs.get("channel_axis", 1)
            ca = int(ca)
            if name == "prelu":
                return ref.prelu(x64, lay(logical[1]), ca), "exact", None
            if name == "prelu_backward":
                g64 = logical[0].astype(np.float64)
                gi, gs = ref.prelu_backward(g64, x64, lay(logical[2]), ca)
                return gi, "exact", gs
            if name == "affine_prelu":
                vals = [np.asarray(lay(v)).reshape(-1) for v in logical[1:4]]
                return (ref.affine_prelu(x64, *vals, channel_axis=ca,
                                         rounding=None if c == np.float64 else np.float32),
                        "exact", None)
            base = name[:-len("_backward")] if name.endswith("_backward") else name
            spec = self.specs[base]
            raw = logical[2:] if name.endswith("_backward") else logical[1:]
            op, kp = self.ops.kernel_args(spec, *raw)
            params = [p.default for p in spec.params]
            params[:len(raw)] = raw
            values = {}
            for p, v in zip(spec.params, params):
                values[p.name] = None if v is None else rc(self._as_float(v))
            oracle = getattr(ref, name)
            if name.endswith("_backward"):
                want = oracle(logical[0].astype(np.float64), x64, **values)
            else:
                want = oracle(x64, **values)
            kind = "exact"
            if base == "elu":
                kind = "ulp1"
            elif (base == "relu" and not name.endswith("_backward")
                  and values.get("negative_slope") and values.get("threshold")):
                kind = "ulp2"
                if c != np.float64:
                    # the README's exception: where x - threshold overflows
                    # the compute type, -inf (the oracle's value can be finite)
                    t = c.type(values["threshold"])
                    over = np.isneginf(x.astype(c) - t) & np.isfinite(x64)
                    want = np.where(over & (x64 <= values["threshold"]) & (want < 0),
                                    -np.inf, want)
            return want, kind, None

    @staticmethod
    def _as_float(v):
        try:
            return float(v)
        except OverflowError:
            return math.inf if v > 0 else -math.inf

    def check_values(self, name, result, logical, args, kwargs):
        x = logical[1] if name.endswith("_backward") else logical[0]
        gi = result[0] if name == "prelu_backward" else result
        if not isinstance(gi, np.ndarray):
            raise PropertyFailed(f"{name} returned {type(gi).__name__}")
        if gi.shape != x.shape:
            raise PropertyFailed(f"{name}: shape {gi.shape}, x has {x.shape}")
        if gi.dtype.newbyteorder("=") != x.dtype.newbyteorder("="):
            raise PropertyFailed(f"{name}: dtype {gi.dtype}, x has {x.dtype}")
        try:
            want, kind, gs_want = self.expected(name, logical, kwargs)
        except (ValueError, TypeError) as exc:
            raise PropertyFailed(f"{name} accepted what its oracle refuses: {exc}") from exc
        dtype = x.dtype.newbyteorder("=")
        c = compute_dtype(dtype)
        with np.errstate(all="ignore"):
            want = np.asarray(want).astype(c).astype(dtype)
        got = np.asarray(gi).astype(dtype)
        compare(name, got, want, kind, [a for a in logical if isinstance(a, np.ndarray)
                                        and a.shape == x.shape])
        if gs_want is not None:
            compare_grad_slopes(result[1], gs_want, logical[0], x, c)

    # -- modules and lookup
    def run_module(self):
        inp, fa = self.inp, self.fa
        names = ["PReLU", "LeakyReLU", "ReLU", "ReLU6", "ThresholdedReLU", "ELU", "Hardtanh",
                 "Square"]
        cls_name = inp.pick(names)
        kwargs = {}
        if inp.bool():
            kwargs["inplace"] = True
        if cls_name == "PReLU":
            x = self.x
            k = inp.int(6)
            c = x.shape[1] if x.ndim >= 2 else 1
            if k == 0:
                kwargs["shared"] = True
            elif k == 1:
                kwargs["channel_axis"] = -1
                c = x.shape[-1] if x.ndim >= 2 else 1
            elif k == 2 and x.ndim >= 2:
                kwargs["slopes_shape"] = tuple(1 if inp.bool() or d > MAX_ELEMENTS else d
                                               for d in x.shape[1:])
                c = None
            elif k == 3:
                kwargs["slopes_shape"] = inp.pick([0, (2, -1), "3", (True,), 5])
                c = None
            if c is not None:
                c = c if c <= MAX_ELEMENTS else 3      # a declared huge axis
                args = (inp.pick([c, c, c + 1, 0, True, 2.0]),)
            else:
                args = ()
            if inp.bool():
                kwargs["init"] = param_value(inp, "init")
            if inp.int(4) == 0:
                kwargs["dtype"] = inp.pick(["float32", "bfloat16", np.float16, np.float64,
                                            "int8", object, None])
        else:
            spec_name = {"LeakyReLU": "leaky_relu", "ReLU": "relu", "ReLU6": "relu6",
                         "ThresholdedReLU": "thresholded_relu", "ELU": "elu",
                         "Hardtanh": "hardtanh", "Square": "square"}[cls_name]
            args = tuple(param_value(inp, p.name) for p in self.specs[spec_name].params
                         if inp.bool())
        before = self.arrays.snapshot()
        try:
            m = getattr(fa, cls_name)(*args, **kwargs)
        except (TypeError, ValueError) as exc:
            self.check_error(exc, before, (), {})
            return
        if inp.int(8) == 0:                 # backward before forward
            try:
                m.backward(np.ones(self.x.shape, np.float32) if not declared_huge(self.x)
                           else self.x)
            except RuntimeError as exc:
                if "before forward" not in str(exc):
                    raise PropertyFailed(f"RuntimeError {exc}") from exc
                return
            raise PropertyFailed("backward before forward did not raise")
        out, _ = self.destination(self.x)
        if out is self.g and out is not None:
            out = None
        kw = {} if out is None else {"out": out}
        y_copy = None
        try:
            before = self.arrays.snapshot()
            y = m.forward(self.x, **kw)
        except (TypeError, ValueError, MemoryError) as exc:
            self.check_error(exc, before, (self.x,), kw)
            return
        if declared_huge(self.x):
            raise PropertyFailed("a module's forward of a declared huge x returned")
        y_copy = np.array(y, copy=True)
        if not isinstance(y, np.ndarray) or y.shape != self.x.shape:
            raise PropertyFailed(f"{cls_name}.forward returned {type(y).__name__}")
        g = place(self.arrays, values(self.inp, self.rng, y.size, y.dtype).reshape(y.shape)
                  if not y.dtype.hasobject else y_copy, self.inp, self.rng)
        try:
            before = self.arrays.snapshot()
            gi = m.backward(g)
        except (TypeError, ValueError, MemoryError) as exc:
            self.check_error(exc, before, (g,), {})
            return
        if not isinstance(gi, np.ndarray) or gi.shape != y_copy.shape:
            raise PropertyFailed(f"{cls_name}.backward returned a wrong shape")

    def run_get(self):
        inp, fa = self.inp, self.fa
        names = list(fa.available()) + ["lreul", "", "PReLU", "relu ", 3, None]
        name = inp.pick(names)
        params = {}
        for key in ("negative_slope", "alpha", "theta", "max_value", "slope", "inplace"):
            if inp.int(4) == 0:
                params[key] = param_value(inp, key)
        before = self.arrays.snapshot()
        try:
            m = fa.get(name, **params)
        except (TypeError, ValueError) as exc:
            self.check_error(exc, before, (), {})
            return
        try:
            before = self.arrays.snapshot()
            m(self.x)
        except (TypeError, ValueError, MemoryError) as exc:
            self.check_error(exc, before, (self.x,), {})

    def run_batchnorm(self):
        inp, rng = self.inp, self.rng
        c = inp.pick([1, 2, 3, 8, 0])
        dt = inp.pick([np.float32, np.float64, np.float16, np.int32])

        def vec(positive=False):
            k = inp.int(10)
            v = rng.uniform(0.1 if positive else -3, 3, c)
            if k == 0:
                v = rng.uniform(0, 1, c + 1)
            elif k == 1:
                v = v.reshape(1, -1)
            elif k == 2 and c:
                v[0] = inp.pick([math.nan, math.inf, -1.0])
            elif k == 3:
                return v.tolist()
            return v.astype(dt)

        args = [vec(), vec(True)]
        kwargs = {}
        if inp.bool():
            kwargs["eps"] = param_value(inp, "eps")
        if inp.bool():
            kwargs["weight"] = vec()
        if inp.bool():
            kwargs["bias"] = vec()
        before = self.arrays.snapshot()
        try:
            scale, shift = self.fa.batchnorm_scale_shift(*args, **kwargs)
        except (TypeError, ValueError) as exc:
            self.check_error(exc, before, (), {})
            return
        var = np.asarray(args[1])
        want_dt = np.float64 if var.dtype == np.float64 else np.float32
        if (scale.dtype != want_dt or shift.dtype != want_dt
                or scale.shape != np.shape(args[1])):
            raise PropertyFailed(f"batchnorm_scale_shift gave {scale.dtype} {scale.shape}")
        with np.errstate(all="ignore"):
            w_s, w_b = self.ref.batchnorm_scale_shift(
                args[0], args[1], kwargs.get("eps", 1e-5), kwargs.get("weight"),
                kwargs.get("bias"))
        if not np.isfinite(want_dt(self._as_float(kwargs.get("eps", 1e-5)))):
            return          # eps past the compute dtype's range: invstd is 0 there
        tol = 32 * np.finfo(want_dt).eps
        for got, want in ((scale, w_s), (shift, w_b)):
            with np.errstate(all="ignore"):
                err = np.abs(got.astype(np.float64) - want)
                bias = kwargs.get("bias")
                bound = tol * (np.abs(want) + np.abs(np.asarray(args[0], np.float64) * w_s)
                               + (0 if bias is None else np.abs(np.asarray(bias, np.float64)))
                               + np.finfo(want_dt).tiny)
                bad = ~((err <= bound) | (np.isnan(got) & np.isnan(want))
                        | (got.astype(np.float64) == want)
                        | ~np.isfinite(want))
            if bad.any():
                raise PropertyFailed(f"batchnorm_scale_shift: {got} != {want}")


def _describe(a):
    if isinstance(a, np.ndarray):
        return (f"ndarray(dtype={a.dtype}, shape={a.shape}, strides={a.strides}, "
                f"writeable={a.flags.writeable}, aligned={a.flags.aligned}"
                + (f", values={a.ravel()[:8].tolist()}" if a.size < HUGE else "") + ")")
    return repr(a)


def describe_call(name, args, kwargs):
    return (f"{name}(" + ", ".join([_describe(a) for a in args]
                                    + [f"{k}={_describe(v)}" for k, v in kwargs.items()])
            + ")")


# ---------------------------------------------------------------- comparisons
def _ordered(a):
    signed = {2: np.int16, 4: np.int32, 8: np.int64}[a.dtype.itemsize]
    i = a.view(signed).astype(np.int64)
    return np.where(i < 0, np.iinfo(signed).min - i, i)


def compare(name, got, want, kind, inputs=()):
    got = np.ascontiguousarray(got)
    want = np.ascontiguousarray(want)
    inputs = [np.ascontiguousarray(a).reshape(-1) for a in inputs]

    def at(i):
        return ", ".join(repr(a[i]) for a in inputs)

    gn = np.isnan(got.astype(np.float64))
    wn = np.isnan(want.astype(np.float64))
    if (gn != wn).any():
        i = np.flatnonzero(gn != wn)[0]
        raise PropertyFailed(f"{name}: NaN mismatch at {i}: got {got.flat[i]!r}, "
                             f"want {want.flat[i]!r}, inputs {at(i)}")
    ulps = {"exact": 0, "ulp1": 1, "ulp2": 2}[kind]
    d = np.abs(_ordered(got[~gn]) - _ordered(want[~gn]))
    if d.size and d.max() > ulps:
        i = int(np.flatnonzero(~gn.reshape(-1))[int(np.argmax(d))])
        raise PropertyFailed(f"{name}: {d.max()} ulp from the oracle ({ulps} allowed) at "
                             f"{i}: got {got.flat[i]!r}, want {want.flat[i]!r}, "
                             f"inputs {at(i)}")


def compare_grad_slopes(got, want, g, x, c):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        raise PropertyFailed(f"grad_slopes shape {got.shape}, want {want.shape}")
    with np.errstate(all="ignore"):
        terms = np.abs(np.where(x.astype(np.float64) > 0, 0.0,
                                x.astype(np.float64) * g.astype(np.float64)))
        scale = np.nansum(terms) + 1e-300
        # the float64 sum's error, then one rounding to c (subnormals included)
        tol = (64 * np.finfo(np.float64).eps * scale + np.finfo(c).eps * np.abs(want)
               + np.finfo(c).smallest_subnormal)
        # past the compute dtype's range the sum rounds to inf
        big = np.abs(want) > np.finfo(c).max * (1 - np.finfo(c).eps)
        ok = ((np.isnan(got) & np.isnan(want)) | (np.abs(got - want) <= tol)
              | (got == want) | (big & np.isinf(got) & (np.sign(got) == np.sign(want))))
    if not ok.all():
        raise PropertyFailed(f"grad_slopes {got[~ok][:4]} != oracle {want[~ok][:4]}")


# ---------------------------------------------------------------- drivers
LAST_CASE = []


def test_one_input(data):
    try:
        run_case(data)
    except PropertyFailed as exc:
        raise PropertyFailed(f"{exc}\n  in {LAST_CASE[0] if LAST_CASE else '?'}") from None


def _inputs(paths):
    for p in paths:
        if p.endswith(".hex"):                  # a saved corpus: one input a line
            with open(p) as f:
                for i, line in enumerate(f):
                    yield f"{p}:{i + 1}", bytes.fromhex(line.strip())
        elif os.path.isdir(p):
            for name in sorted(os.listdir(p)):
                with open(os.path.join(p, name), "rb") as f:
                    yield name, f.read()
        else:
            with open(p, "rb") as f:
                yield p, f.read()


def main(argv):
    if argv[1:2] == ["--replay"]:
        n = 0
        for name, data in _inputs(argv[2:]):
            try:
                test_one_input(data)
            except Exception:
                print(f"input {name} fails:", file=sys.stderr)
                raise
            n += 1
        print(f"replayed {n} inputs")
        return
    if argv[1:2] == ["--unpack"]:
        # a saved corpus (one input a line, in hex) into a directory, for libFuzzer
        os.makedirs(argv[3], exist_ok=True)
        for i, (_, data) in enumerate(_inputs([argv[2]])):
            with open(os.path.join(argv[3], f"saved-{i:04d}"), "wb") as f:
                f.write(data)
        return
    if argv[1:2] == ["--hex"]:
        test_one_input(bytes.fromhex(argv[2]))
        return
    if argv[1:2] == ["--random"]:
        # random bytes, no coverage guidance; every distinct failure is shown
        import time
        count = int(argv[2])
        rng = np.random.default_rng(int(argv[3]) if len(argv) > 3 and argv[3] else None)
        stop = time.monotonic() + (float(argv[4]) if len(argv) > 4 else math.inf)
        seen = {}
        for done in range(count):
            if time.monotonic() > stop:
                count = done
                break
            data = rng.integers(0, 256, rng.integers(0, 200), dtype=np.uint8).tobytes()
            try:
                test_one_input(data)
            except Exception as exc:  # noqa: BLE001 - collected and shown below
                key = f"{type(exc).__name__}: {str(exc).split(':')[0]}"
                if key not in seen:
                    print(f"{type(exc).__name__}: {exc}\n  input {data.hex()}",
                          file=sys.stderr)
                seen[key] = seen.get(key, 0) + 1
        print(f"ran {count} random inputs, {sum(seen.values())} failures "
              f"({len(seen)} kinds)")
        if seen:
            sys.exit(1)
        return
    import atheris
    with atheris.instrument_imports(include=["fastact"]):
        import fastact  # noqa: F401
        import fastact._modules  # noqa: F401
        import fastact._reference  # noqa: F401
        import fastact._registry  # noqa: F401
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
