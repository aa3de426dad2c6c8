"""The examples in the docstrings and the README run and print what they say."""
import contextlib
import doctest
import io
import pathlib
import re

import numpy as np
import pytest

import fastact
import fastact._api
import fastact._modules

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


@pytest.mark.parametrize("module", [fastact, fastact._api, fastact._modules])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_readme_python_examples():
    """Every ```python block of the README that shows >>> prompts is run."""
    if not README.exists():
        pytest.skip("README.md not found beside the tests")
    text = README.read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if ">>>" in b]
    assert blocks, "the README has no runnable examples"
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for i, block in enumerate(blocks):
        test = parser.get_doctest(block, {"np": np, "fastact": fastact}, f"README[{i}]",
                                  str(README), 0)
        runner.run(test)
    assert runner.failures == 0


def test_readme_plain_python_blocks_run():
    """Every ```python block of the README without >>> prompts (the versions
    to paste) runs without error."""
    if not README.exists():
        pytest.skip("README.md not found beside the tests")
    blocks = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
              if ">>>" not in b]
    assert blocks, "the README has no plain examples"
    for i, block in enumerate(blocks):
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(block, f"README plain block {i}", "exec"), {})
