"""The classifier's training loss on mixup/CutMix targets is ``F.cross_entropy`` with probability targets: the
soft-target cross-entropy ``−Σ_k t_k log softmax(z)_k`` averaged over the batch (timm's SoftTargetCrossEntropy)."""

import pytest
import torch
import torch.nn.functional as F

from lfq_kit.models._video_mixup import VideoMixup


def test_cross_entropy_on_mixed_targets_gives_the_loss_it_gave_before():
    torch.manual_seed(0)
    mixed = VideoMixup(num_classes=4, mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1)(
        torch.randn(4, 3, 2, 8, 8), torch.tensor([0, 1, 2, 3])
    )
    logits = torch.randn(4, 4, generator=torch.Generator().manual_seed(1))
    loss = F.cross_entropy(logits.float(), mixed.targets)
    assert mixed.lam == pytest.approx(0.43726426362991333)
    assert float(loss) == pytest.approx(1.6969478130340576, abs=1e-6)  # the former soft_target_cross_entropy
    assert float(loss) == pytest.approx(float(-(mixed.targets * logits.log_softmax(-1)).sum(-1).mean()), abs=1e-6)
