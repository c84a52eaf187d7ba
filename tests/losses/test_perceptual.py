"""Perceptual losses: weights from a local file, resolved at setup, never from the network (conftest blocks it)."""

import lightning as L
import pytest
import timm
import torch
import torchvision
from safetensors.torch import save_file
from tiny_tokenizer import RandomClipData, tiny_tokenizer
from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

from lfq_kit.losses import LogitsPerceptualLoss, LPIPSLoss, frames


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
        expected = torch.nn.functional.mse_loss(
            net(((frames(y) + 1) / 2 - mean) / std), net(((frames(x) + 1) / 2 - mean) / std)
        )
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
    with pytest.raises(FileNotFoundError, match="/no/such/squeeze.pth"):
        LPIPSLoss("squeeze", weights="/no/such/squeeze.pth").load()


@pytest.fixture(scope="module")
def squeezenet_file(tmp_path_factory):
    net = torchvision.models.squeezenet1_1(weights=None)  # random: any backbone weights will do
    path = tmp_path_factory.mktemp("weights") / "squeezenet1_1.pth"
    torch.save(net.state_dict(), path)
    return path, net


def test_lpips_uses_the_local_backbone_weights(squeezenet_file, monkeypatch):
    path, net = squeezenet_file
    loss = LPIPSLoss("squeeze", weights=str(path))
    assert loss.state_dict() == {}
    x = torch.rand(2, 3, 2, 32, 32) * 2 - 1
    y = x.flip(-1)
    value = loss(y, x)
    # oracle: torchmetrics' own LPIPS, its torchvision constructor handing it these weights as "pretrained"
    monkeypatch.setattr(torchvision.models, "squeezenet1_1", lambda weights=None: net)
    expected = LearnedPerceptualImagePatchSimilarity(net_type="squeeze")(frames(y), frames(x))
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    assert loss(x, x).item() == 0.0
    recon = y.clone().requires_grad_()
    loss(recon, x).backward()
    assert recon.grad.abs().sum() > 0


def test_lpips_takes_a_features_only_safetensors_file_and_refuses_another_network(squeezenet_file, tmp_path):
    path, net = squeezenet_file
    save_file(net.features.state_dict(), str(tmp_path / "features.safetensors"))
    x, y = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    whole = LPIPSLoss("squeeze", weights=str(path))(y, x)
    assert LPIPSLoss("squeeze", weights=str(tmp_path / "features.safetensors"))(y, x).item() == whole.item()
    with pytest.raises(ValueError, match="not a torchvision alexnet state dict"):
        LPIPSLoss("alex", weights=str(path)).load()
    with pytest.raises(ValueError, match="net_type"):
        LPIPSLoss("resnet")


def test_unavailable_pretrained_weights_say_to_pass_weights():
    for loss in (LogitsPerceptualLoss("resnet18"), LPIPSLoss("squeeze")):
        with pytest.raises(RuntimeError, match="pass the file as `weights: "):
            loss.load()


class _DataThatRecords(RandomClipData):
    read = False

    def train_dataloader(self):
        self.read = True
        return super().train_dataloader()


@pytest.mark.parametrize("loss", [LogitsPerceptualLoss, LPIPSLoss], ids=["logits", "lpips"])
def test_missing_weights_fail_at_setup_before_any_data_is_read(tmp_path, loss):
    missing = str(tmp_path / "missing.pth")
    model = tiny_tokenizer(discriminator=False, perceptual_loss=loss(weights=missing))
    data = _DataThatRecords()
    t = L.Trainer(default_root_dir=tmp_path, accelerator="cpu", logger=False, max_steps=1, enable_progress_bar=False)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        t.fit(model, data)
    assert not data.read
    # evaluation never needs the perceptual loss: it does not load it
    t = L.Trainer(
        default_root_dir=tmp_path, accelerator="cpu", logger=False, limit_val_batches=1, enable_progress_bar=False
    )
    t.validate(model, RandomClipData())
    assert model.perceptual_loss._frozen.net is None


def test_frames_folds_time_into_batch():
    video = torch.arange(2 * 3 * 4).float().view(2, 3, 4, 1, 1)
    f = frames(video)
    assert f.shape == (8, 3, 1, 1)
    assert torch.equal(f[5], video[1, :, 1])
