import subprocess
import sys

import reviews.sdc

from .vectors import REPO_ROOT


def test_the_engine_imports_without_django():
    code = "import sys, reviews.sdc; sys.exit(any(name.split('.')[0] == 'django' for name in sys.modules))"
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr


def test_the_public_api_is_exported():
    for name in reviews.sdc.__all__:
        assert hasattr(reviews.sdc, name), name
