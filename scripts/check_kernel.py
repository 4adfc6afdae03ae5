#!/usr/bin/env python
"""Check that the Jupyter kernel spec NAME (default: mlsys) runs this venv's Python (mlsys.platform.devenv).

    .venv/bin/python -m ipykernel install --user --name mlsys --display-name "mlsys (.venv)"
    .venv/bin/python scripts/check_kernel.py [NAME]
"""
import sys

from mlsys.core import ConfigError
from mlsys.platform.devenv import check_kernelspec

if __name__ == "__main__":
    name = sys.argv[1] if len(sys.argv) > 1 else "mlsys"
    try:
        spec = check_kernelspec(name, sys.executable)
    except ConfigError as e:
        sys.exit(f"check_kernel.py: error: {e}")
    print(f"kernel {name!r} ({spec['display_name']}) runs {spec['python']}, this venv's Python")
