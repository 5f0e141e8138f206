"""Independent references for the tests: the seed article's loop, transcribed.

The article fits ``weights`` with a plain numpy loop on the gradient of the
*summed* squared error. Here the gradient is taken as the (weighted) *mean*,
the form the estimator documents; nothing from :mod:`sk_adam` is used.
"""

import numpy as np


def seed_adam(X, y, alpha, beta1, beta2, epsilon, n_iter, sample_weight=None):
    """Run the article's Adam loop for ``n_iter`` iterations.

    Returns the iterates (``n_iter + 1`` rows, the starting zeros first) and
    the weighted MSE of each iterate.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    s = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
    s = s / s.sum()
    weights = np.zeros(X.shape[1])
    moment1 = np.zeros(X.shape[1])
    moment2 = np.zeros(X.shape[1])
    iterates = [weights.copy()]
    mses = [np.sum(s * (y - X @ weights) ** 2)]
    for iterationCount in range(n_iter):
        error = y - np.matmul(X, weights.T)
        gradient = -np.matmul(X.T, s * error)
        moment1 = (beta1 * moment1) + (1 - beta1) * gradient
        moment2 = (beta2 * moment2) + (1 - beta2) * np.power(gradient, 2)
        moment1hat = moment1 / (1 - np.power(beta1, iterationCount + 1))
        moment2hat = moment2 / (1 - np.power(beta2, iterationCount + 1))
        weights = weights - ((alpha * moment1hat) / (np.sqrt(moment2hat) + epsilon)).T
        iterates.append(weights.copy())
        mses.append(np.sum(s * (y - X @ weights) ** 2))
    return np.array(iterates), np.array(mses)


def weighted_standardize(X, y, s):
    """Explicitly centred and scaled copies of X and y (weighted moments)."""
    s = s / s.sum()
    mu = s @ X
    sigma = np.sqrt(s @ (X - mu) ** 2)
    sigma[sigma == 0] = 1.0
    mu_y = s @ y
    sigma_y = np.sqrt(s @ (y - mu_y) ** 2)
    return (X - mu) / sigma, (y - mu_y) / sigma_y, mu, sigma, mu_y, sigma_y


def weighted_lstsq(X, y, sample_weight=None, fit_intercept=True):
    """Weighted least squares by numpy's lstsq on a dense copy (min-norm).

    Returns ``(coef, intercept)`` shaped like LinearRegression's.
    """
    X = X.toarray() if hasattr(X, "toarray") else np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    s = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
    root = np.sqrt(s / s.sum())
    Y = y.reshape(len(y), -1)
    if fit_intercept:
        mu = (s @ X) / s.sum()
        mu_y = (s @ Y) / s.sum()
        Xc, Yc = X - mu, Y - mu_y
    else:
        Xc, Yc = X, Y
    W = np.linalg.lstsq(root[:, None] * Xc, root[:, None] * Yc, rcond=None)[0]
    b = (mu_y - mu @ W) if fit_intercept else np.zeros(Y.shape[1])
    if y.ndim == 1:
        return W[:, 0], float(b[0])
    return W.T, b


def seed_adam_batches(
    X, y, batches, alpha, beta1=0.9, beta2=0.999, epsilon=1e-8, decay=None
):
    """The article's loop with each gradient taken on a batch of rows.

    ``batches`` is the sequence of row-index arrays, one Adam step each.
    With ``decay`` (a number of steps), step ``t = 1, 2, ...`` is taken at
    ``alpha / sqrt(1 + (t - 1) / decay)``.
    Returns the final weights and, per batch, its MSE before its step.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    weights = np.zeros(X.shape[1])
    moment1 = np.zeros(X.shape[1])
    moment2 = np.zeros(X.shape[1])
    losses = []
    for iterationCount, rows in enumerate(batches):
        error = y[rows] - X[rows] @ weights
        losses.append(np.mean(error**2))
        gradient = -(X[rows].T @ error) / len(rows)
        moment1 = beta1 * moment1 + (1 - beta1) * gradient
        moment2 = beta2 * moment2 + (1 - beta2) * gradient**2
        moment1hat = moment1 / (1 - beta1 ** (iterationCount + 1))
        moment2hat = moment2 / (1 - beta2 ** (iterationCount + 1))
        rate = alpha if decay is None else alpha / np.sqrt(1 + iterationCount / decay)
        weights = weights - rate * moment1hat / (np.sqrt(moment2hat) + epsilon)
    return weights, np.array(losses)


def hashed_order(n, keys):
    """The documented keyed hash permutation of ``range(n)``, one integer at
    a time in plain Python (no numpy arithmetic, no wrapping integers)."""
    multipliers = [0x7FEB352D, 0x846CA68B, 0x9E3779B1, 0x85EBCA6B]
    bits = 1
    while 2**bits < n:
        bits += 1
    half = (bits + 1) // 2
    order = []
    for i in range(2**bits):
        x = i
        for key, multiplier in zip(keys, multipliers, strict=True):
            x = ((x + int(key)) * multiplier) % 2**bits
            x = x ^ (x // 2**half)
        if x < n:
            order.append(x)
    return order


def epoch_orders(n, seed, epochs):
    """The row orders of ``epochs`` shuffled epochs over ``n >= 4096`` rows
    with ``random_state=seed``: four 32-bit keys drawn per epoch."""
    rng = np.random.RandomState(seed)
    return [
        hashed_order(n, rng.randint(2**32, size=4, dtype=np.uint32))
        for _ in range(epochs)
    ]
