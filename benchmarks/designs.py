"""Hard designs and an exact least-squares oracle, shared by the
exactness tests (tests/test_exactness.py) and the exactness benchmark.

Nothing here imports sk_adam: the oracle is least squares by a pivoted QR of
the centred, scaled design (``scipy.linalg.lstsq``, LAPACK's ``gelsy``, a
cutoff at the design's own precision), refined three times on residuals in
extended precision (``np.longdouble``), its intercept the mean residual in
extended precision, and R^2 is evaluated in extended precision too.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import lstsq

__all__ = ["exact_r2", "extended_r2", "ill_conditioned", "standardized_condition"]


def extended_r2(X, y, coef, intercept):
    """R^2 with the residuals in extended precision."""
    wide = np.longdouble
    residual = y.astype(wide) - X.astype(wide) @ coef.astype(wide) - wide(intercept)
    centred = y.astype(wide) - np.mean(y.astype(wide))
    return float(1 - np.sum(residual**2) / np.sum(centred**2))


def exact_r2(X, y):
    mean = X.mean(axis=0)
    Xc = X - mean
    scale = np.linalg.norm(Xc, axis=0)
    scale[scale == 0] = 1.0
    A = Xc / scale
    coef = np.zeros(X.shape[1])
    for _ in range(4):  # lstsq, then three refinements
        residual = (y - y.mean()).astype(np.longdouble) - A.astype(np.longdouble) @ coef
        coef = (
            coef + lstsq(A, np.float64(residual), cond=1e-15, lapack_driver="gelsy")[0]
        )
    coef = coef / scale
    # the intercept as the mean residual in extended precision: in float64,
    # y.mean() - mean @ coef cancels (1e18 for 5e11 at condition 1e12)
    wide = np.longdouble
    intercept = np.mean(y.astype(wide) - X.astype(wide) @ coef.astype(wide))
    return extended_r2(X, y, coef, float(intercept))


def standardized_condition(X):
    Z = X - X.mean(axis=0)
    Z = Z / np.linalg.norm(Z, axis=0)
    s = np.linalg.svd(Z, compute_uv=False)
    return s[0] / s[-1]


def ill_conditioned(condition, n=400, d=12, seed=0):
    """Columns of mixed scales and offsets whose standardized design has
    singular values spread log-uniformly over ``condition``, and a target
    that depends on every direction, the weakest included."""
    rng = np.random.RandomState(seed)
    U = np.linalg.qr(rng.randn(n, d) - 0)[0]
    U -= U.mean(axis=0)  # centred columns: what standardizing sees
    V = np.linalg.qr(rng.randn(d, d))[0]
    singular = np.logspace(0, -np.log10(condition), d)
    # offsets of a few spreads: a column then holds its variation to 1e-15
    scales = np.logspace(-3, 3, d)
    offsets = scales * rng.uniform(-10, 10, d)
    X = (U * singular) @ V.T * scales + offsets
    y = U @ rng.randn(d) + 0.1 * rng.randn(n)
    return X, y
