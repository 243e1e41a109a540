"""Training backend: pretraining, the weak contrastive stage with the soft mask, the supervised stage.

See docs/training.md. Stages: train/pretrain.py, train/weak.py (train/supervised.py); shared loop in
train/loop.py; data in train/data.py; checkpoints in train/checkpoint.py; torchrun/DDP/FSDP2 in
train/distributed.py; InfoNCE and the cross-rank gather in train/losses.py.
"""
