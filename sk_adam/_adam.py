"""The Adam update, as a small optimiser object with a picklable state.

This module knows nothing about regression: it turns a gradient into a step.
The state (step count, both moment estimates and the running powers of the
decay rates) lives in :class:`AdamState`, a plain dataclass of numpy arrays and
floats, so that it pickles and can be carried between calls or processes.

The learning rate is not part of Adam's state: it is passed to every
:meth:`Adam.step` (as optax separates ``scale_by_adam`` from the learning
rate), so that a schedule (the solver's plateau decay) owns it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["Adam", "AdamState", "InverseSqrtDecay", "IterateAverage"]

Float64Array = NDArray[np.float64]


@dataclass
class AdamState:
    """The state of one Adam run.

    Attributes
    ----------
    t : int
        Number of updates applied so far; the next update is number ``t + 1``.
    moment1 : ndarray
        Exponential moving average of the gradients (``m`` in Kingma & Ba).
    moment2 : ndarray
        Exponential moving average of the squared gradients (``v``).
    beta1_power, beta2_power : float
        ``beta1 ** t`` and ``beta2 ** t``, kept as running products so that the
        bias corrections cost two multiplications per step.
    """

    t: int
    moment1: Float64Array
    moment2: Float64Array
    beta1_power: float = 1.0
    beta2_power: float = 1.0

    @classmethod
    def zeros(cls, shape: tuple[int, ...]) -> AdamState:
        """A fresh state: no step taken, both moments zero."""
        return cls(t=0, moment1=np.zeros(shape), moment2=np.zeros(shape))

    def copy(self) -> AdamState:
        """An independent copy."""
        return AdamState(
            self.t,
            self.moment1.copy(),
            self.moment2.copy(),
            self.beta1_power,
            self.beta2_power,
        )

    def assign(self, other: AdamState) -> None:
        """Overwrite this state with ``other``'s values, reusing the arrays."""
        self.t = other.t
        np.copyto(self.moment1, other.moment1)
        np.copyto(self.moment2, other.moment2)
        self.beta1_power = other.beta1_power
        self.beta2_power = other.beta2_power


@dataclass(frozen=True)
class InverseSqrtDecay:
    r"""A learning rate that falls as one over the square root of the steps.

    Adam's step number :math:`t` (counted by :class:`AdamState`, from 1)
    is taken at

    .. math::

        \alpha_t = \frac{\alpha}{\sqrt{1 + (t - 1 - t_0) / \tau}},

    :math:`\alpha` at the first step after :math:`t_0` (``start``), a third
    of it after :math:`8 \tau` more steps, a tenth after :math:`99 \tau`.
    Kingma & Ba (2015) prove Adam's convergence on noisy gradients with
    this decay; with the average of the iterates (:class:`IterateAverage`)
    a short stream gets large early steps and a long one small late ones:
    one pass in batches of 256 over 20,000 x 10 rows (78 steps, three
    problems) with ``alpha`` 0.1 and :math:`\tau = 10` ends 2.6e-5 to
    1.2e-4 of R^2 short of least squares where a constant 0.01 is 0.029 to
    0.17 short, and over 200,000 x 50 (781 steps) 3.6e-6 to 4.9e-6
    (constant 0.01: 3.6e-6 to 5.1e-6).

    Examples
    --------
    >>> decay = InverseSqrtDecay(steps=10.0)
    >>> [round(decay.factor(t), 3) for t in (1, 11, 81, 991)]
    [1.0, 0.707, 0.333, 0.1]
    """

    steps: float
    start: int = 0

    def factor(self, t: int) -> float:
        """What step ``t`` multiplies the learning rate by."""
        return float(1.0 / np.sqrt(1.0 + (t - 1 - self.start) / self.steps))


@dataclass
class IterateAverage:
    r"""A running average of the iterates, with more weight on recent ones.

    After the :math:`k`-th averaged step (``count == k``), with iterate
    :math:`w_k`,

    .. math::

        \bar w_k = \bar w_{k-1} + c_k (w_k - \bar w_{k-1}),
        \qquad c_k = \frac{\gamma + 1}{k + \gamma},

    the polynomial-decay average of Shamir & Zhang (2013): :math:`c_1 = 1`
    (the first iterate), and iterate :math:`j` weighs about
    :math:`(j / k)^\gamma` of the latest, so the average forgets the
    starting point and spans roughly the last :math:`1 / (\gamma + 1)` of
    the steps. With mini-batches Adam keeps moving by about the learning
    rate around the minimum; the average keeps the mean of that motion,
    whose noise falls with the number of steps averaged (one pass over
    200,000 x 50 in batches of 256 at rate 0.01, three problems: R^2 6.0e-4
    to 8.8e-4 short of least squares for the last iterate, 3.6e-6 to 5.1e-6
    for the average).

    Attributes
    ----------
    count : int
        Iterates averaged so far (0: none; :attr:`params` is then unused).
    params : ndarray
        The average, in the optimiser's coordinates.

    Examples
    --------
    >>> import numpy as np
    >>> average = IterateAverage.zeros((1,))
    >>> for w in [4.0, 0.0, 2.0]:
    ...     average.update(np.array([w]))
    >>> average.count, average.params.round(4)
    (3, array([1.6]))
    """

    count: int
    params: Float64Array

    #: :math:`\gamma`: 3 forgets the first steps, still far from the
    #: minimum, faster than 1 (one pass over three 200,000 x 50 problems in
    #: batches of 256, R^2 short of least squares: 1 gave 3.9e-6 to 1.1e-5
    #: at rate 0.01 and 4.7e-4 to 1.8e-3 at 0.003; 3 gave 1.4e-6 to 4.7e-6
    #: and 6.2e-5 to 2.3e-4; 7 gave 3.0e-6 to 1.2e-5 at 0.01).
    GAMMA = 3.0

    @classmethod
    def zeros(cls, shape: tuple[int, ...]) -> IterateAverage:
        """No iterate averaged yet."""
        return cls(count=0, params=np.zeros(shape))

    def weight(self) -> float:
        """:math:`c_k` of the next update."""
        return (self.GAMMA + 1.0) / (self.count + 1 + self.GAMMA)

    def update(self, params: Float64Array) -> None:
        """Average in one more iterate."""
        self.params += self.weight() * (params - self.params)
        self.count += 1


class Adam:
    r"""Adam's update, applied to parameters in place.

    One call of :meth:`step` with gradient :math:`g` and learning rate
    :math:`\alpha` performs

    .. math::

        t &\leftarrow t + 1 \\
        m &\leftarrow \beta_1 m + (1 - \beta_1)\, g \\
        v &\leftarrow \beta_2 v + (1 - \beta_2)\, g^2 \\
        \hat m &= m / (1 - \beta_1^t), \qquad \hat v = v / (1 - \beta_2^t) \\
        w &\leftarrow w - \alpha\, \hat m / (\sqrt{\hat v} + \epsilon)

    The bias-corrected :math:`\hat m, \hat v` are never written back into the
    moments, :math:`t` starts at 1 on the first step, and :math:`\epsilon` is
    added outside the square root, as in Kingma & Ba (2015) and
    ``torch.optim.Adam``.

    Parameters
    ----------
    beta1, beta2 : float in [0, 1)
        Decay rates of the first and second moment estimates.
    epsilon : float
        Added to :math:`\sqrt{\hat v}` to keep the division finite.
    state : AdamState
        The state to continue; it is modified in place by :meth:`step`.

    Examples
    --------
    One step from zero moments moves every coordinate by about the rate:

    >>> import numpy as np
    >>> params = np.array([1.0, -2.0])
    >>> adam = Adam(0.9, 0.999, 1e-8, AdamState.zeros(params.shape))
    >>> adam.step(params, np.array([0.5, -4.0]), 0.1)
    >>> params.round(6)
    array([ 0.9, -1.9])
    >>> adam.state.t
    1
    """

    def __init__(
        self,
        beta1: float,
        beta2: float,
        epsilon: float,
        state: AdamState,
    ) -> None:
        self.beta1 = float(beta1)
        self.beta2 = float(beta2)
        self.epsilon = float(epsilon)
        self.state = state
        self._buffer = np.empty_like(state.moment1)

    def step(self, params: Float64Array, grad: Float64Array, rate: float) -> None:
        """Apply one Adam update with learning rate ``rate`` to ``params`` (in
        place) for gradient ``grad``."""
        s = self.state
        m, v, buf = s.moment1, s.moment2, self._buffer
        s.t += 1
        s.beta1_power *= self.beta1
        s.beta2_power *= self.beta2
        # m <- beta1 m + (1 - beta1) g
        m *= self.beta1
        np.multiply(grad, 1.0 - self.beta1, out=buf)
        m += buf
        # v <- beta2 v + (1 - beta2) g^2
        v *= self.beta2
        np.multiply(grad, grad, out=buf)
        buf *= 1.0 - self.beta2
        v += buf
        # w <- w - alpha * mhat / (sqrt(vhat) + eps), without forming mhat and
        # vhat: with c2 = sqrt(1 - beta2^t) it is
        # w - (alpha c2 / (1 - beta1^t)) * m / (sqrt(v) + eps c2)
        c2 = np.sqrt(1.0 - s.beta2_power)
        np.sqrt(v, out=buf)
        buf += self.epsilon * c2
        np.divide(m, buf, out=buf)
        buf *= rate * c2 / (1.0 - s.beta1_power)
        params -= buf
