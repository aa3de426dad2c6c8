"""Types of fastact._cuda, the compiled CUDA glue (fastact/_cuda.pyx).

Device pointers and CUDA streams are ints (addresses and cudaStream_t
values); every function that calls the CUDA runtime raises RuntimeError
carrying its message.  The module exists only where the CUDA part was built.
"""

KDL_CPU: int
KDL_CUDA: int
KDL_CUDA_HOST: int
KDL_CUDA_MANAGED: int
KDL_FLOAT: int
KDL_BFLOAT: int

def last_error_message() -> str: ...

# --- discovery

def device_count() -> tuple[int, int, str]:
    """(cudaGetDeviceCount's error code, the count, the message)."""

def driver_version() -> int: ...
def runtime_version() -> int: ...
def device_name(device: int) -> tuple[str, int, int]:
    """(name, major, minor) of a device."""

def pointer_device(ptr: int) -> tuple[int, bool]:
    """(device, is_device_memory) for a pointer."""

def stream_wait(device: int, waiting: int, producer: int) -> None: ...

# --- launchers

def unary_forward(device: int, op: int, dtype: int, p0: float, p1: float, p2: float,
                  x: int, y: int, n: int, stream: int) -> None: ...
def unary_backward(device: int, op: int, dtype: int, p0: float, p1: float, p2: float,
                   g: int, x: int, gi: int, n: int, stream: int) -> None: ...
def prelu_forward(device: int, dtype: int, x: int, slopes: int, slopes_on_host: bool,
                  shared_slope: float, y: int, outer: int, channels: int, inner: int,
                  stream: int) -> None: ...
def affine_prelu_forward(device: int, dtype: int, x: int, scale: int, shift: int,
                         slopes: int, on_host: bool, y: int, outer: int, channels: int,
                         inner: int, stream: int) -> None: ...
def prelu_backward(device: int, dtype: int, g: int, x: int, slopes: int,
                   slopes_on_host: bool, shared_slope: float, gi: int, grad_slopes: int,
                   grad_dtype: int, divide_by_slopes: bool, outer: int, channels: int,
                   inner: int, stream: int) -> None: ...

# --- DLPack

class DLPackView:
    """A consumed DLPack tensor: its fields, and ownership of it."""

    @property
    def ptr(self) -> int: ...
    @property
    def shape(self) -> tuple[int, ...]: ...
    @property
    def strides(self) -> tuple[int, ...] | None:
        """In elements; None: C-contiguous."""
    @property
    def device_type(self) -> int: ...
    @property
    def device_id(self) -> int: ...
    @property
    def type_code(self) -> int: ...
    @property
    def bits(self) -> int: ...
    @property
    def lanes(self) -> int: ...

def consume_dlpack(capsule: object) -> DLPackView:
    """Take a "dltensor" capsule and return a DLPackView owning it."""

def xla_ffi_targets() -> dict[str, object]:
    """{XLA FFI target name: PyCapsule of its CUDA handler} (fastact.jax)."""
