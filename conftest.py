"""Test-session settings that must hold before anything imports scipy.

scikit-learn's ``check_array_api_input`` (run by ``check_estimator`` in
tests/test_common.py) is skipped unless scipy's array-API support is
switched on, which scipy reads once, when it is first imported.
"""

import os

os.environ.setdefault("SCIPY_ARRAY_API", "1")
