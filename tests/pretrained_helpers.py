"""Shared by tests/conan_model and tests/train (tests/ is on sys.path through its conftest.py)."""

from __future__ import annotations

from pathlib import Path


def make_qwen2_folder(folder: Path, tokenizer, max_length: int = 128, seed: int = 0):
    """A random 2-layer Qwen2 (QKV bias, untied head) saved by transformers as safetensors shards, with
    ``tokenizer`` (a `tokenizers` Tokenizer, at most 512 tokens, <bos>=2 and <eos>=3) as its tokenizer.json;
    ``seed`` gives other weights of the same shapes. Returns (folder, the transformers model)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
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


def make_gguf(path: Path, tokenizer=None, arch: str = "llama", seed: int = 0, norm_dtype=None, width: int = 8,
              raw_types: dict[str, str] | None = None, vocab: tuple[list[str], list[str]] | None = None) -> Path:
    """A random 1-layer decoder of ``width`` (feed-forward 2x) written as a GGUF file (F32 tensors, llama.cpp's
    names). With ``tokenizer`` (this project's BBPE) its vocabulary and merges become the tokenizer.ggml.* keys, so
    ``load_init("gguf:<path>")`` reads it back whole; ``seed`` gives other weights of the same shapes;
    ``norm_dtype`` the type of the layer's attention norm (the other tensors stay float32); ``raw_types`` writes
    the named weights as zero bytes of a GGML type ({"blk.0.ffn_down": "IQ4_NL"}: rows must be whole blocks, so a
    width of 32 for a 32-block type), as walk 68 rewrote one tensor of a real file. ``vocab`` writes the
    tokenizer.ggml.* keys as given instead, (tokens, merges), normal tokens and no special ids: a walk's damaged
    tokenizer (stop 69)."""
    import json

    import numpy as np
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFWriter

    rng = np.random.default_rng(seed)
    writer = GGUFWriter(str(path), arch)
    rows = 32
    if tokenizer is not None:
        model = json.loads(tokenizer.to_str())["model"]
        tokens = [token for token, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1])]
        rows = len(tokens) + 1  # transformers' GGUF converter adds <|endoftext|> to a gpt2-type vocabulary
        writer.add_tokenizer_model("gpt2")
        writer.add_token_list(tokens)
        writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in model["merges"]])
        writer.add_token_types([3] * 4 + [1] * (len(tokens) - 4))  # <pad> <unk> <bos> <eos>: control tokens
        writer.add_bos_token_id(2)
        writer.add_eos_token_id(3)
        writer.add_pad_token_id(0)
    elif vocab is not None:
        tokens, merges = vocab
        rows = len(tokens) + 1
        writer.add_tokenizer_model("gpt2")
        writer.add_token_list(tokens)
        writer.add_token_merges(merges)
        writer.add_token_types([1] * len(tokens))
    w, f = width, 2 * width
    for key, value in (("block_count", 1), ("embedding_length", w), ("feed_forward_length", f), ("head_count", 2),
                       ("head_count_kv", 2), ("vocab_size", rows), ("context_length", 64)):  # fmt: skip
        getattr(writer, f"add_{key}")(value)
    writer.add_layer_norm_rms_eps(1e-5)
    shapes = {"token_embd": (rows, w), "blk.0.attn_q": (w, w), "blk.0.attn_k": (w, w), "blk.0.attn_v": (w, w),
              "blk.0.attn_output": (w, w), "blk.0.ffn_gate": (f, w), "blk.0.ffn_up": (f, w),
              "blk.0.ffn_down": (w, f)}  # fmt: skip
    for name, shape in shapes.items():
        if name in (raw_types or {}):
            kind = GGMLQuantizationType[raw_types[name]]
            block, size = GGML_QUANT_SIZES[kind]
            writer.add_tensor(f"{name}.weight", np.zeros((shape[0], shape[1] // block * size), np.uint8),
                              raw_dtype=kind)  # fmt: skip
        else:
            writer.add_tensor(f"{name}.weight", rng.normal(0.0, 0.1, shape).astype(np.float32))
    writer.add_tensor("blk.0.attn_norm.weight", np.ones(w, norm_dtype or np.float32))
    for name in ("blk.0.ffn_norm", "output_norm"):
        writer.add_tensor(f"{name}.weight", np.ones(w, np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
