"""The DPO loss and its variants, written from the equations.

Every loss here is a function of one number per preference pair, the
*log-ratio margin*

.. math::

    h = \\big(\\log \\pi_\\theta(y_w|x) - \\log \\pi_{ref}(y_w|x)\\big)
      - \\big(\\log \\pi_\\theta(y_l|x) - \\log \\pi_{ref}(y_l|x)\\big),

where :math:`y_w` is the chosen and :math:`y_l` the rejected completion, and
each :math:`\\log \\pi(y|x)` is a sum of per-token log-probabilities over the
completion (see :mod:`zephyr_tutorial.dpo.logprobs`). The implicit reward of a
completion is :math:`\\hat r(y) = \\beta \\, (\\log \\pi_\\theta(y|x) - \\log \\pi_{ref}(y|x))`,
so :math:`\\beta h = \\hat r(y_w) - \\hat r(y_l)`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def sigmoid_dpo_loss(margin: torch.Tensor, beta: float) -> torch.Tensor:
    """DPO (Rafailov et al. 2023, eq. 7): :math:`L = -\\log \\sigma(\\beta h)`.

    The Bradley-Terry negative log-likelihood of preferring ``y_w``, with the
    implicit reward in place of a learned reward model.
    """
    return -F.logsigmoid(beta * margin)


def ipo_loss(margin: torch.Tensor, beta: float) -> torch.Tensor:
    """IPO (Azar et al. 2023, eq. 17): :math:`L = (h - \\tfrac{1}{2\\beta})^2`.

    A squared loss with a finite target margin :math:`1/(2\\beta)`: unlike DPO
    it stops pushing once the pair is separated by that much, which guards
    against overfitting deterministic preferences. ``beta`` plays the role of
    the paper's :math:`\\tau`.
    """
    return (margin - 1.0 / (2.0 * beta)) ** 2


def hinge_loss(margin: torch.Tensor, beta: float) -> torch.Tensor:
    """Hinge / SLiC (Zhao et al. 2023): :math:`L = \\max(0, 1 - \\beta h)`.

    Zero loss, and zero gradient, once the reward margin :math:`\\beta h` exceeds 1.
    """
    return torch.relu(1.0 - beta * margin)


def conservative_dpo_loss(margin: torch.Tensor, beta: float, label_smoothing: float) -> torch.Tensor:
    """Conservative DPO (cDPO, Mitchell 2023): labels flipped with probability :math:`\\varepsilon`.

    .. math:: L = -(1-\\varepsilon)\\log\\sigma(\\beta h) - \\varepsilon \\log \\sigma(-\\beta h)

    Its minimum sits at the finite margin :math:`\\beta h^* = \\log\\frac{1-\\varepsilon}{\\varepsilon}`
    instead of at infinity; :math:`\\varepsilon = 0` gives plain DPO.
    """
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing}")
    return -(1.0 - label_smoothing) * F.logsigmoid(beta * margin) - label_smoothing * F.logsigmoid(-beta * margin)


def robust_dpo_loss(margin: torch.Tensor, beta: float, label_smoothing: float) -> torch.Tensor:
    """Robust DPO (rDPO, Chowdhury et al. 2024): an *unbiased* loss under labels flipped with probability
    :math:`\\varepsilon`.

    .. math::

        L = \\frac{-(1-\\varepsilon)\\log\\sigma(\\beta h)
                 + \\varepsilon \\log \\sigma(-\\beta h)}{1 - 2\\varepsilon}

    cDPO (:func:`conservative_dpo_loss`) averages the two labels and so stops at a finite margin; rDPO
    subtracts the flipped term instead, so that its expectation over the noise is the clean DPO loss.
    :math:`\\varepsilon = 0` gives plain DPO. TRL's ``loss_type="robust"``.
    """
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing}")
    clean = -(1.0 - label_smoothing) * F.logsigmoid(beta * margin)
    flipped = -label_smoothing * F.logsigmoid(-beta * margin)
    return (clean - flipped) / (1.0 - 2.0 * label_smoothing)


def dpo_gradient_weight(margin: torch.Tensor, beta: float) -> torch.Tensor:
    """The per-pair weight of the DPO gradient: :math:`\\sigma(\\hat r(y_l) - \\hat r(y_w)) = \\sigma(-\\beta h)`.

    .. math::

        \\nabla_\\theta L = -\\beta\\, \\sigma(-\\beta h)\\,
        \\big[\\nabla_\\theta \\log \\pi_\\theta(y_w|x) - \\nabla_\\theta \\log \\pi_\\theta(y_l|x)\\big]

    Close to 1 when the implicit reward orders the pair wrongly, close to 0
    once it is ordered right with room to spare.
    """
    return torch.sigmoid(-beta * margin)


@dataclass(frozen=True)
class PreferenceLoss:
    """One entry of :data:`PREFERENCE_LOSSES`: a loss of the margin and, where we derived it, its gradient."""

    loss: Callable[[torch.Tensor, float, float], torch.Tensor]
    """``loss(margin, beta, label_smoothing)``: the per-pair loss."""
    gradient: Callable[[torch.Tensor, float, float], torch.Tensor] | None = None
    """:math:`-\\partial L / \\partial h` in closed form; ``None``: computed by autograd from ``loss``."""
    per_token: bool = False
    """Whether the margin is built from per-token log-ratios (each divided by its completion length, IPO)."""


PREFERENCE_LOSSES: dict[str, PreferenceLoss] = {
    "sigmoid": PreferenceLoss(
        lambda h, beta, eps: sigmoid_dpo_loss(h, beta), lambda h, beta, eps: beta * dpo_gradient_weight(h, beta)
    ),
    "ipo": PreferenceLoss(
        lambda h, beta, eps: ipo_loss(h, beta), lambda h, beta, eps: -2.0 * (h - 1.0 / (2.0 * beta)), per_token=True
    ),
    "hinge": PreferenceLoss(
        lambda h, beta, eps: hinge_loss(h, beta), lambda h, beta, eps: beta * (beta * h < 1.0).to(h.dtype)
    ),
    "conservative": PreferenceLoss(
        conservative_dpo_loss, lambda h, beta, eps: beta * ((1.0 - eps) - torch.sigmoid(beta * h))
    ),
    "robust": PreferenceLoss(robust_dpo_loss),
}
"""The preference losses by ``loss_type``: a new variant is one function of the margin and one line here.
The names are TRL's ``loss_type`` names where TRL has the loss (``tests/test_dpo_parity.py`` checks them)."""

LOSS_TYPES = tuple(PREFERENCE_LOSSES)


def _registered(loss_type: str) -> PreferenceLoss:
    if loss_type not in PREFERENCE_LOSSES:
        raise ValueError(f"unknown loss_type {loss_type!r}; choose one of {', '.join(PREFERENCE_LOSSES)}")
    return PREFERENCE_LOSSES[loss_type]


def loss_gradient_on_margin(margin: torch.Tensor, beta: float, loss_type: str, label_smoothing: float = 0.0):
    """:math:`-\\partial L / \\partial h`, for plotting how hard each loss pushes the margin up.

    In closed form where the registry has it: sigmoid :math:`\\beta\\sigma(-\\beta h)`; ipo
    :math:`-2(h - 1/(2\\beta))`; hinge :math:`\\beta\\,[\\beta h < 1]`; conservative
    :math:`\\beta((1-\\varepsilon) - \\sigma(\\beta h))`. Otherwise by autograd.
    """
    entry = _registered(loss_type)
    if entry.gradient is not None:
        return entry.gradient(margin, beta, label_smoothing)
    with torch.enable_grad():
        h = margin.detach().clone().requires_grad_()
        (grad,) = torch.autograd.grad(entry.loss(h, beta, label_smoothing).sum(), h)
    return -grad


def preference_loss(margin: torch.Tensor, beta: float, loss_type: str = "sigmoid", label_smoothing: float = 0.0):
    """Per-pair loss of the variant ``loss_type`` (a key of :data:`PREFERENCE_LOSSES`) at the log-ratio margin."""
    return _registered(loss_type).loss(margin, beta, label_smoothing)


@dataclass
class DPOLossOutput:
    """What one DPO batch computes; the means are the numbers TRL logs under ``rewards/*``."""

    loss: torch.Tensor
    """Mean loss over the batch (the scalar to backpropagate)."""
    losses: torch.Tensor
    chosen_rewards: torch.Tensor
    """:math:`\\beta(\\log\\pi_\\theta(y_w|x) - \\log\\pi_{ref}(y_w|x))`, detached, one per pair."""
    rejected_rewards: torch.Tensor

    @property
    def margins(self) -> torch.Tensor:
        return self.chosen_rewards - self.rejected_rewards

    @property
    def reward_accuracy(self) -> float:
        """Fraction of pairs whose implicit reward prefers the chosen completion."""
        return (self.chosen_rewards > self.rejected_rewards).float().mean().item()

    def metrics(self) -> dict[str, float]:
        """The batch means under TRL's metric names."""
        return {
            "loss": self.loss.item(),
            "rewards/chosen": self.chosen_rewards.mean().item(),
            "rewards/rejected": self.rejected_rewards.mean().item(),
            "rewards/accuracies": self.reward_accuracy,
            "rewards/margins": self.margins.mean().item(),
        }


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    beta: float = 0.1,
    loss_type: str = "sigmoid",
    label_smoothing: float = 0.0,
    chosen_lengths: torch.Tensor | None = None,
    rejected_lengths: torch.Tensor | None = None,
) -> DPOLossOutput:
    """The DPO loss of a batch of pairs from sequence log-probabilities (shape ``(batch,)`` each).

    .. math::

        L_{DPO} = -\\log\\sigma\\Big(\\beta\\big[(\\log\\pi_\\theta(y_w|x) - \\log\\pi_{ref}(y_w|x))
                 - (\\log\\pi_\\theta(y_l|x) - \\log\\pi_{ref}(y_l|x))\\big]\\Big)

    ``loss_type`` picks the variant applied to the margin (see :func:`preference_loss`).
    For a per-token variant (``"ipo"``) with completion lengths given, each log-ratio is divided by its
    completion length first (the per-token form TRL uses, confirmed by the IPO authors).
    """
    chosen_logratios = policy_chosen_logps - reference_chosen_logps
    rejected_logratios = policy_rejected_logps - reference_rejected_logps
    if _registered(loss_type).per_token and chosen_lengths is not None and rejected_lengths is not None:
        margin = chosen_logratios / chosen_lengths.clamp(min=1) - rejected_logratios / rejected_lengths.clamp(min=1)
    else:
        margin = chosen_logratios - rejected_logratios
    losses = preference_loss(margin, beta, loss_type, label_smoothing)
    return DPOLossOutput(
        loss=losses.mean(),
        losses=losses,
        chosen_rewards=(beta * chosen_logratios).detach(),
        rejected_rewards=(beta * rejected_logratios).detach(),
    )


def bradley_terry_probability(margin: torch.Tensor | float, beta: float) -> torch.Tensor:
    """:math:`p(y_w \\succ y_l) = \\sigma(\\beta h)`, the preference probability the implicit rewards imply."""
    return torch.sigmoid(beta * torch.as_tensor(margin, dtype=torch.float32))


def conservative_optimal_margin(beta: float, label_smoothing: float) -> float:
    """:math:`h^* = \\frac{1}{\\beta}\\log\\frac{1-\\varepsilon}{\\varepsilon}`, where the cDPO loss is minimal."""
    return math.log((1.0 - label_smoothing) / label_smoothing) / beta
