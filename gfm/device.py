"""Which torch device a stage runs on: `embed.device`, `hgnn.device`, `two_tower.device`.

Each takes `auto | cpu | cuda`. `auto` (the default) is CUDA when torch sees a CUDA device,
else the CPU; `cuda` on a machine without one is an error that says so. Results are the same
on either device up to float tolerance (CPU is what CI tests). torch is imported only when a
device is resolved, so the config can be read without it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from gfm.errors import ConfigError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def check_device_setting(value: object, where: str) -> None:
    """Raise a ConfigError unless `value` is one of auto, cpu, cuda."""
    if value not in DEVICE_CHOICES:
        raise ConfigError(f"{where} must be auto, cpu or cuda, got {value!r} (auto: CUDA when "
                          "torch sees a GPU, else the CPU)")


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def resolve_device(setting: str, where: str = "device") -> str:
    """The torch device name ("cpu" or "cuda") for a setting auto, cpu or cuda.

    `where` names the setting in the error (e.g. "hgnn.device")."""
    check_device_setting(setting, where)
    if setting == "cpu":
        return "cpu"
    available = cuda_available()
    if setting == "cuda" and not available:
        import torch

        build = (f"torch {torch.__version__} is built without CUDA" if torch.version.cuda is None
                 else f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU")
        raise ConfigError(f"{where} is cuda, but {build} on this machine: set {where} to auto "
                          "(CUDA when there is one, else the CPU) or cpu, e.g. "
                          f"--set {where}=auto")
    return "cuda" if available else "cpu"


def device_name(device: str) -> str:
    """What ran the stage, for run metrics: the GPU's name, or "cpu"."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    return "cpu"


@contextlib.contextmanager
def deterministic_torch() -> Iterator[None]:
    """Deterministic torch kernels inside (also a decorator): the same inputs and seed train the
    same model, run after run. Without it the HGNN's CPU training differs in the 6th digit of
    its first loss from one run to the next (a kernel that sums in a thread-dependent order),
    and early stopping turns that into a different model. On CUDA an op without a
    deterministic kernel warns instead of failing (warn_only). The previous setting is
    restored on exit."""
    import torch

    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
