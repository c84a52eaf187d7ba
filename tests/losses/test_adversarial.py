import math

import pytest
import torch

from lfq_kit.losses import LeCAM, discriminator_loss, generator_loss, r1_penalty


def test_non_saturating_losses_known_values():
    zero = torch.zeros(4, 1)
    assert generator_loss(zero).item() == pytest.approx(math.log(2))
    assert discriminator_loss(zero, zero).item() == pytest.approx(2 * math.log(2))
    # a confident, correct discriminator: tiny loss; the generator then has a large one
    assert discriminator_loss(torch.full((2, 1), 20.0), torch.full((2, 1), -20.0)).item() < 1e-8
    assert generator_loss(torch.full((2, 1), -20.0)).item() == pytest.approx(20.0, rel=1e-6)


def test_r1_penalty_of_a_linear_discriminator():
    w = torch.tensor([3.0, -4.0])
    x = torch.randn(5, 2, requires_grad=True)
    logits = x @ w  # gradient w.r.t. each input is w: ‖w‖² = 25
    assert r1_penalty(logits, x).item() == pytest.approx(25.0)


def test_r1_penalty_is_differentiable_w_r_t_discriminator_weights():
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    x = torch.randn(3, 2, requires_grad=True)
    r1_penalty((x * w).sum(-1), x).backward()
    assert torch.allclose(w.grad, 2 * w.detach())  # d‖w‖²/dw


def test_lecam_values_and_ema():
    lecam = LeCAM(decay=0.5)
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-2.0, 0.0])
    # EMAs start at 0: relu(real − 0)² mean = (1 + 9)/2; relu(0 − fake)² mean = (4 + 0)/2
    assert lecam(real, fake).item() == pytest.approx(5.0 + 2.0)
    lecam.update(real, fake)
    assert lecam.ema_real.item() == pytest.approx(1.0) and lecam.ema_fake.item() == pytest.approx(-0.5)
    assert set(lecam.state_dict()) == {"ema_real", "ema_fake"}  # checkpointed
    with pytest.raises(ValueError, match="decay"):
        LeCAM(1.0)
