"""The DPO losses from scratch: formulas, gradients, the registry of variants."""

from __future__ import annotations

import math

import pytest
import torch

from zephyr_tutorial.dpo import (
    conservative_dpo_loss,
    conservative_optimal_margin,
    dpo_gradient_weight,
    dpo_loss,
    loss_gradient_on_margin,
    preference_loss,
    robust_dpo_loss,
    sigmoid_dpo_loss,
)


def test_dpo_loss_matches_the_formula_on_numbers():
    out = dpo_loss(
        torch.tensor([-10.0, -4.0]),
        torch.tensor([-12.0, -3.0]),
        torch.tensor([-11.0, -4.0]),
        torch.tensor([-11.0, -5.0]),
        beta=0.5,
    )
    # pair 1: h = (1) - (-1) = 2 ; pair 2: h = 0 - 2 = -2
    expected = [-math.log(1 / (1 + math.exp(-1.0))), -math.log(1 / (1 + math.exp(1.0)))]
    assert out.losses.tolist() == pytest.approx(expected, rel=1e-6)
    assert out.chosen_rewards.tolist() == pytest.approx([0.5, 0.0])
    assert out.rejected_rewards.tolist() == pytest.approx([-0.5, 1.0])
    assert out.reward_accuracy == 0.5
    assert out.margins.tolist() == pytest.approx([1.0, -1.0])


def test_loss_is_log2_when_policy_equals_reference():
    logps = torch.randn(6)
    assert dpo_loss(logps, logps - 3, logps, logps - 3, beta=0.1).loss.item() == pytest.approx(math.log(2))


def test_gradient_weight_formula_equals_autograd():
    torch.manual_seed(0)
    beta = 0.3
    chosen = (torch.randn(16) * 5).requires_grad_()
    rejected = (torch.randn(16) * 5).requires_grad_()
    ref_chosen, ref_rejected = torch.randn(16) * 5, torch.randn(16) * 5
    out = dpo_loss(chosen, rejected, ref_chosen, ref_rejected, beta=beta)
    out.losses.sum().backward()
    weight = dpo_gradient_weight((chosen - ref_chosen) - (rejected - ref_rejected), beta).detach()
    # dL/dlogpi(y_w) = -beta * sigma(r_l - r_w), dL/dlogpi(y_l) = +beta * sigma(r_l - r_w)
    assert torch.allclose(chosen.grad, -beta * weight, atol=1e-6)
    assert torch.allclose(rejected.grad, beta * weight, atol=1e-6)
    assert torch.allclose(weight, torch.sigmoid(out.rejected_rewards - out.chosen_rewards), atol=1e-6)


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo", "hinge", "conservative"])
def test_closed_form_margin_gradient_equals_autograd(loss_type):
    margin = torch.linspace(-30, 30, 241, dtype=torch.float64).requires_grad_()
    preference_loss(margin, 0.2, loss_type, label_smoothing=0.1).sum().backward()
    closed = loss_gradient_on_margin(margin.detach(), 0.2, loss_type, label_smoothing=0.1)
    keep = (0.2 * margin.detach() - 1).abs() > 1e-9  # the hinge's kink
    assert torch.allclose(-margin.grad[keep], closed[keep], atol=1e-9)


def test_variants_have_their_characteristic_shape():
    beta = 0.5
    h = torch.tensor([0.0, 1 / (2 * beta), 1 / beta, 10.0])
    assert preference_loss(h, beta, "ipo")[1].item() == 0.0  # IPO's target margin 1/(2 beta)
    assert preference_loss(h, beta, "hinge")[2:].tolist() == [0.0, 0.0]  # no loss beyond beta*h = 1
    assert torch.allclose(conservative_dpo_loss(h, beta, 0.0), preference_loss(h, beta, "sigmoid"))
    grid = torch.linspace(-20, 40, 60001)
    best = grid[conservative_dpo_loss(grid, beta, 0.1).argmin()].item()
    assert best == pytest.approx(conservative_optimal_margin(beta, 0.1), abs=1e-2)
    with pytest.raises(ValueError, match="label_smoothing"):
        conservative_dpo_loss(h, beta, 0.5)
    with pytest.raises(ValueError, match="unknown loss_type"):
        preference_loss(h, beta, "kto")


def test_robust_loss_is_unbiased_under_label_noise_and_plain_dpo_without_it():
    """rDPO: averaged over a flip with probability eps, the loss is the clean DPO loss (Chowdhury et al. 2024)."""
    h = torch.linspace(-40, 40, 81, dtype=torch.float64)
    beta, eps = 0.3, 0.2
    expected = (1 - eps) * robust_dpo_loss(h, beta, eps) + eps * robust_dpo_loss(-h, beta, eps)
    assert torch.allclose(expected, sigmoid_dpo_loss(h, beta), atol=1e-10)
    assert torch.allclose(preference_loss(h, beta, "robust", 0.0), preference_loss(h, beta, "sigmoid"))
    with pytest.raises(ValueError, match="label_smoothing"):
        robust_dpo_loss(h, beta, 0.5)


def test_a_registered_loss_reaches_every_function_that_dispatches_on_loss_type(monkeypatch):
    """A new variant is one function and one registry line: preference_loss, its gradient and dpo_loss follow."""
    from zephyr_tutorial.dpo.losses import PREFERENCE_LOSSES, PreferenceLoss

    monkeypatch.setitem(PREFERENCE_LOSSES, "squared_hinge", PreferenceLoss(lambda h, b, e: torch.relu(1 - b * h) ** 2))
    h = torch.tensor([-2.0, 0.0, 1.0, 4.0], dtype=torch.float64)
    assert preference_loss(h, 0.5, "squared_hinge").tolist() == pytest.approx([4.0, 1.0, 0.25, 0.0])
    # no closed form registered: the gradient comes from autograd, -dL/dh = 2 beta relu(1 - beta h)
    assert loss_gradient_on_margin(h, 0.5, "squared_hinge").tolist() == pytest.approx([2.0, 1.0, 0.5, 0.0])
    out = dpo_loss(
        torch.tensor([-1.0]),
        torch.tensor([-3.0]),
        torch.tensor([-2.0]),
        torch.tensor([-2.0]),
        beta=0.5,
        loss_type="squared_hinge",
    )
    assert out.loss.item() == pytest.approx(0.0)  # margin h = 2: beta h = 1, no loss left
