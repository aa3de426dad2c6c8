"""Dispatch of arrays that are not numpy arrays (GPU arrays, DLPack producers)."""


def is_foreign(obj):
    """True for an array fastact reaches through another library's protocol."""
    return False


def cuda_available():
    return False


def cuda_status():
    return "not built"
