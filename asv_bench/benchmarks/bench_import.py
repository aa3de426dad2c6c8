"""How long `import fastact` takes, in a fresh interpreter each time."""


def timeraw_import_fastact():
    # asv times this code in a new process.  bfloat16's provider, ml_dtypes,
    # is imported only when bfloat16 is first used, so it is not part of this.
    return "import fastact"
