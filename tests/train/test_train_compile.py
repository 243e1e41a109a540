"""`compile = true` (train/distributed.py wrap: each decoder block compiled) trains like eager (issue 16.3).

Full optimizer steps with the stages' pieces (Task wrapper, AdamW from train.loop, grad clipping): pretrain
(causal LM) and weak (in-batch InfoNCE under the soft mask, alpha moving every step, so a recompile per alpha
would show as a slow test, and a wrong mask as different losses).

Tolerance: inductor reorders and fuses fp32 reductions (RMSNorm, SwiGLU, the attention matmuls), which moves a
forward by a few fp32 ulps, ~1e-6 relative. AdamW's first update is lr * g/|g| per weight, so a reordering
only matters where a gradient component is near 0 and flips sign; such a weight moves the loss by ~2 * lr * |g|,
which for lr 1e-3 and |g| < 1e-6 is < 1e-8. Over 3 steps the losses therefore agree to ~1e-6 relative; rtol
1e-4 leaves a hundredfold margin while still failing on any real difference (a wrong mask or a skipped block
changes the loss in the second or third digit).
"""

from __future__ import annotations

import pytest
import torch

from conan_model import ConanConfig, ConanModel
from train.config import PretrainConfig, StageConfig, load_config
from train.distributed import Runtime, wrap
from train.errors import ConfigError
from train.loop import build_optimizer
from train.losses import info_nce

CPU = Runtime(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


def _steps(compile: bool) -> list[float]:
    torch.manual_seed(0)
    model = ConanModel(ConanConfig.preset("tiny", max_length=64))
    module = wrap(model, CPU, compile=compile).train()
    optimizer = build_optimizer(module, StageConfig(data=["-"], lr=1e-3))
    g = torch.Generator().manual_seed(1)
    rows = torch.randint(4, model.config.vocab_size, (4, 32), generator=g)
    lengths = torch.tensor([24, 20, 17, 12, 24, 9, 14, 12])
    mask = (torch.arange(24)[None, :] < lengths[:, None]).long()
    pairs = torch.randint(4, model.config.vocab_size, mask.shape, generator=g).masked_fill(mask == 0, 0)
    losses = []
    for step in range(3):
        for stage in ("pretrain", "weak"):
            if stage == "pretrain":
                loss = module("lm_loss", rows)
            else:
                emb = module("embed", pairs, mask, mask_mode="soft", alpha=(step + 1) / 4)
                loss = info_nce(emb[:4], emb[4:])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
    return losses


@pytest.mark.slow
def test_compiled_steps_give_the_eager_losses(needs_inductor, one_thread) -> None:
    eager, compiled = _steps(False), _steps(True)
    assert eager[0] != eager[2]  # the steps do train
    assert compiled == pytest.approx(eager, rel=1e-4)


def test_compile_and_attention_backend_are_config_keys(tmp_path) -> None:
    cfg = load_config(PretrainConfig, None, ["data=x.jsonl", "compile=true", "attention_backend=sdpa"])
    assert cfg.compile and cfg.attention_backend == "sdpa"
    with pytest.raises(ConfigError, match="attention_backend must be one of"):
        load_config(PretrainConfig, None, ["data=x.jsonl", "attention_backend=fast"])
