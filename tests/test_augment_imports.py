"""Import smoke tests: the numpy-only augmentation modules must not pull in torch."""
import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["mlsys.augment.text", "mlsys.augment.mixup"])
def test_light_modules_do_not_import_torch(module):
    code = f"import sys, {module}; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.torch
@pytest.mark.parametrize("module", ["mlsys.augment.image", "mlsys.augment.perturb"])
def test_torch_modules_import(module):
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
