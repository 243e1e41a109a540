"""Shared by tests/conan_model and tests/train (tests/ is on sys.path through its conftest.py)."""

from __future__ import annotations

from pathlib import Path


def make_qwen2_folder(folder: Path, tokenizer, max_length: int = 128):
    """A random 2-layer Qwen2 (QKV bias, untied head) saved by transformers as safetensors shards, with
    ``tokenizer`` (a `tokenizers` Tokenizer, at most 512 tokens, <bos>=2 and <eos>=3) as its tokenizer.json.
    Returns (folder, the transformers model)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    cfg = Qwen2Config(vocab_size=512, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=max_length,
                      rope_theta=1e4, rms_norm_eps=1e-6, tie_word_embeddings=False, bos_token_id=2, eos_token_id=3,
                      pad_token_id=0)  # fmt: skip
    ref = Qwen2ForCausalLM(cfg).eval()
    with torch.no_grad():  # transformers zero-inits biases; random ones make the bias mapping visible
        for layer in ref.model.layers:
            for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                proj.bias.normal_(0.0, 0.5)
    ref.save_pretrained(folder, max_shard_size="150KB")
    (folder / "tokenizer.json").write_text(tokenizer.to_str(), encoding="utf-8")
    return folder, ref
