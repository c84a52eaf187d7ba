"""Perceptual losses: loaded lazily from a local file, never from the network in tests."""

import pytest
import timm
import torch
from safetensors.torch import save_file

from lfq_kit.losses import LogitsPerceptualLoss, frames


@pytest.fixture(scope="module")
def resnet_file(tmp_path_factory):
    net = timm.create_model("resnet18", pretrained=False)
    path = tmp_path_factory.mktemp("weights") / "resnet18.safetensors"
    save_file(net.state_dict(), str(path))
    return path, net


def test_logits_loss_uses_the_local_weights_and_compares_logits(resnet_file):
    path, net = resnet_file
    loss = LogitsPerceptualLoss("resnet18", weights=str(path), input_size=None)
    assert loss.state_dict() == {}  # the frozen network is not part of tokenizer checkpoints
    x = torch.rand(2, 3, 2, 32, 32) * 2 - 1
    y = x.flip(-1)
    value = loss(y, x)
    net.eval()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = torch.nn.functional.mse_loss(net(((frames(y) + 1) / 2 - mean) / std), net(((frames(x) + 1) / 2 - mean) / std))
    assert value.item() == pytest.approx(expected.item(), rel=1e-4)
    assert loss(x, x).item() == 0.0


def test_gradient_reaches_the_reconstruction(resnet_file):
    path, _ = resnet_file
    loss = LogitsPerceptualLoss("resnet18", weights=str(path), input_size=48)
    recon = (torch.rand(1, 3, 1, 32, 32) * 2 - 1).requires_grad_()
    loss(recon, torch.zeros(1, 3, 1, 32, 32)).backward()
    assert recon.grad.abs().sum() > 0


def test_missing_weights_file_is_named():
    loss = LogitsPerceptualLoss("resnet18", weights="/no/such/weights.safetensors")
    with pytest.raises(FileNotFoundError, match="/no/such/weights.safetensors"):
        loss(torch.zeros(1, 3, 1, 8, 8), torch.zeros(1, 3, 1, 8, 8))


def test_frames_folds_time_into_batch():
    video = torch.arange(2 * 3 * 4).float().view(2, 3, 4, 1, 1)
    f = frames(video)
    assert f.shape == (8, 3, 1, 1)
    assert torch.equal(f[5], video[1, :, 1])
