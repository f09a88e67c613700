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
from dataclasses import dataclass

import torch
import torch.nn.functional as F

LOSS_TYPES = ("sigmoid", "ipo", "hinge", "conservative")


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


def dpo_gradient_weight(margin: torch.Tensor, beta: float) -> torch.Tensor:
    """The per-pair weight of the DPO gradient: :math:`\\sigma(\\hat r(y_l) - \\hat r(y_w)) = \\sigma(-\\beta h)`.

    .. math::

        \\nabla_\\theta L = -\\beta\\, \\sigma(-\\beta h)\\,
        \\big[\\nabla_\\theta \\log \\pi_\\theta(y_w|x) - \\nabla_\\theta \\log \\pi_\\theta(y_l|x)\\big]

    Close to 1 when the implicit reward orders the pair wrongly, close to 0
    once it is ordered right with room to spare.
    """
    return torch.sigmoid(-beta * margin)


def loss_gradient_on_margin(margin: torch.Tensor, beta: float, loss_type: str, label_smoothing: float = 0.0):
    """:math:`-\\partial L / \\partial h` in closed form, for plotting how hard each loss pushes the margin up.

    sigmoid: :math:`\\beta\\sigma(-\\beta h)`; ipo: :math:`-2(h - 1/(2\\beta))`;
    hinge: :math:`\\beta\\,[\\beta h < 1]`; conservative: :math:`\\beta((1-\\varepsilon) - \\sigma(\\beta h))`.
    """
    if loss_type == "sigmoid":
        return beta * dpo_gradient_weight(margin, beta)
    if loss_type == "ipo":
        return -2.0 * (margin - 1.0 / (2.0 * beta))
    if loss_type == "hinge":
        return beta * (beta * margin < 1.0).to(margin.dtype)
    if loss_type == "conservative":
        return beta * ((1.0 - label_smoothing) - torch.sigmoid(beta * margin))
    raise ValueError(f"unknown loss_type {loss_type!r}; choose one of {', '.join(LOSS_TYPES)}")


def preference_loss(margin: torch.Tensor, beta: float, loss_type: str = "sigmoid", label_smoothing: float = 0.0):
    """Per-pair loss of the variant ``loss_type`` (one of :data:`LOSS_TYPES`) at log-ratio margin ``margin``."""
    if loss_type == "sigmoid":
        return sigmoid_dpo_loss(margin, beta)
    if loss_type == "ipo":
        return ipo_loss(margin, beta)
    if loss_type == "hinge":
        return hinge_loss(margin, beta)
    if loss_type == "conservative":
        return conservative_dpo_loss(margin, beta, label_smoothing)
    raise ValueError(f"unknown loss_type {loss_type!r}; choose one of {', '.join(LOSS_TYPES)}")


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
    For ``"ipo"`` with completion lengths given, each log-ratio is divided by its
    completion length first (the per-token form TRL uses, confirmed by the IPO authors).
    """
    chosen_logratios = policy_chosen_logps - reference_chosen_logps
    rejected_logratios = policy_rejected_logps - reference_rejected_logps
    if loss_type == "ipo" and chosen_lengths is not None and rejected_lengths is not None:
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
