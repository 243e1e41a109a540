"""Imported decoders compute what transformers computes on the same weights (SmolLM2 GGUF, synthetic Qwen2)."""

from __future__ import annotations

import json

import pytest
import torch

from conan_model import load_pretrained, save_pretrained
from conan_model.importing import load_init
from conan_model.masks import sdpa_mask
from conan_model.pretrained import source_path
from conan_model.tokenizer import encode_batch

SENTENCES = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "A man is playing a guitar on the stage while the crowd sings along.",
    "北京是中国的首都，也是一座历史悠久的城市。",
    "今天的天气很好，我们去公园散步吧。",
]


@pytest.fixture(scope="module")
def smollm2_model(smollm2):
    """The prepared (imported) SmolLM2 conan_model folder, float32, and its tokenizer."""
    return load_pretrained(smollm2, dtype=torch.float32)


@pytest.mark.slow
def test_smollm2_logits_and_ids_match_transformers(smollm2_model, shared_data, one_thread):
    """Same token ids, and next-token logits within 1e-3 with the same argmax at every position.

    Both run float32 on identical dequantized weights and the same operations (RMSNorm in float32, rotate-half
    RoPE, SDPA), so differences come only from kernel summation order: ~1e-6 relative on logits of magnitude
    ~10-30 over 30 layers stays far below 1e-3. The conan model runs the sentences as one right-padded batch,
    so padding is covered too, and a real SQuAD passage of several hundred tokens takes RoPE far past the short
    sentences' positions (audit K checked short texts only).
    """
    from transformers import AutoTokenizer, LlamaForCausalLM

    model, tok = smollm2_model
    rows = (shared_data / "en" / "SQuADRetrieval" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:50]
    passage = max((json.loads(r)["text"] for r in rows), key=len)[:2500]
    texts = [*SENTENCES, passage]
    source = source_path("smollm2-135m")  # transformers dequantizes the same GGUF file with its own reader
    ref = LlamaForCausalLM.from_pretrained(str(source.parent), gguf_file=source.name, dtype=torch.float32).eval()
    ref_tok = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
    ids = [tok.encode(s, add_special_tokens=False).ids for s in texts]
    assert ids == [ref_tok(s, add_special_tokens=False).input_ids for s in texts] and len(ids[-1]) > 300
    assert all(tok.encode(s).ids == x + [model.config.eos_token_id] for s, x in zip(texts, ids, strict=True))
    width = max(map(len, ids))
    batch = torch.tensor([x + [0] * (width - len(x)) for x in ids])
    mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids])
    with torch.no_grad():
        ours = model.lm_logits(model(batch, mask, mask_mode="causal"))
        for row, x in enumerate(ids):
            theirs = ref(torch.tensor([x])).logits[0]
            mine = ours[row, : len(x)]
            assert (mine - theirs).abs().max().item() <= 1e-3
            assert torch.equal(mine.argmax(-1), theirs.argmax(-1))


@pytest.mark.slow
def test_smollm2_soft_mask_limits(smollm2_model, one_thread):
    """The soft-mask float-bias path equals the causal forward near alpha = 0 and the bidirectional one near 1.

    alpha = 0 and 1 take SDPA's exact causal / key-mask fast paths, so Eq. 4's log-bias is tested at
    alpha = 1e-30 and 1 - 1e-7. Near 1 every future weight min(alpha*l/i, 1) is exactly 1 (l/i >= l/(l-1)).
    Near 0 a future key's bias is log(1e-30 * l/i) < -60, so it gets at most e^-60 * e^(score gap) of a row:
    nothing in float32 unless a score gap exceeded ~40. Only kernel rounding remains: 1e-4 on hidden states
    of magnitude ~50. alpha = 1e-7 is NOT close to causal for this pretrained model (a bias of -16 is beaten
    by its peaked attention scores), and alpha = 0.5 differs from both ends: the limits are not vacuous.
    """
    model, tok = smollm2_model
    enc = encode_batch(tok, SENTENCES, 64)
    real = enc.attention_mask.bool()
    assert sdpa_mask(enc.attention_mask, "soft", 1e-30)[0] is not None  # really the float-bias path
    with torch.no_grad():
        def hidden(mode: str, alpha: float | None = None) -> torch.Tensor:
            return model(enc.input_ids, enc.attention_mask, mask_mode=mode, alpha=alpha)[real]

        causal, bidir = hidden("causal"), hidden("bidirectional")
        assert (hidden("soft", 1e-30) - causal).abs().max().item() <= 1e-4
        assert (hidden("soft", 1 - 1e-7) - bidir).abs().max().item() <= 1e-4
        assert (hidden("soft", 1e-7) - causal).abs().max().item() > 1.0
        mid = hidden("soft", 0.5)
    assert (mid - causal).abs().max().item() > 1.0 and (mid - bidir).abs().max().item() > 1.0


def test_qwen2_hf_shards_roundtrip(tmp_path, qwen2_folder, sample_texts, one_thread):
    """hf: import of a sharded Qwen2 folder = transformers' logits; save + load keeps them bit for bit.

    Tiny float32 model (2 layers, width 64): summation-order differences are ~1e-7, so 1e-5 is a wide bound.
    """
    folder, ref = qwen2_folder
    assert len(list(folder.glob("*.safetensors"))) >= 2 and (folder / "model.safetensors.index.json").is_file()
    model, tok = load_init(f"hf:{folder}")
    cfg = model.config
    assert cfg.qkv_bias and not cfg.tie_word_embeddings and (cfg.attention, cfg.pooling) == ("causal", "last")
    assert cfg.bos_token_id == 2 and cfg.eos_token_id == 3  # the BBPE adds <bos>, so the import keeps it
    assert model.num_parameters() == sum(p.numel() for p in ref.parameters()) == cfg.num_parameters()
    enc = encode_batch(tok, sample_texts[:6], 32)
    with torch.no_grad():
        ours = model.lm_logits(model(enc.input_ids, enc.attention_mask, mask_mode="causal"))
        for row, n in enumerate(enc.lengths):
            theirs = ref(enc.input_ids[row : row + 1, :n]).logits[0]
            assert (ours[row, :n] - theirs).abs().max().item() <= 1e-5
            assert torch.equal(ours[row, :n].argmax(-1), theirs.argmax(-1))
        save_pretrained(model, tok, tmp_path / "conan")
        again, tok2 = load_pretrained(tmp_path / "conan")
        assert torch.equal(again.lm_logits(again(enc.input_ids, enc.attention_mask, mask_mode="causal")), ours)
    assert tok2.encode(sample_texts[0]).ids == tok.encode(sample_texts[0]).ids


def _with_template(folder, tokenizer, single: str, specials: list[tuple[str, int]]) -> None:
    """The folder's tokenizer.json: `tokenizer` with the post-processor template `single`."""
    from tokenizers import Tokenizer, processors

    tok = Tokenizer.from_str(tokenizer.to_str())
    tok.post_processor = processors.TemplateProcessing(single=single, special_tokens=specials)
    (folder / "tokenizer.json").write_text(tok.to_str(), encoding="utf-8")


@pytest.mark.parametrize("bos", [None, "absent", 0])
def test_bos_is_what_the_tokenizer_puts_first(qwen2_folder, tokenizer, bos):
    """The tokenizer puts <bos> (2) before each text, as a Llama's does; config.json says null, nothing or <pad>.
    transformers feeds the model the tokenizer's ids; the import gives the same ids plus its eos (before stop 54,
    audit: the bos was dropped from every text, because the config did not name it)."""
    from transformers import AutoTokenizer

    folder, _ = qwen2_folder
    _with_template(folder, tokenizer, "<bos> $A", [("<bos>", 2)])
    config = json.loads((folder / "config.json").read_text())
    del config["bos_token_id"]
    (folder / "config.json").write_text(json.dumps(config if bos == "absent" else {**config, "bos_token_id": bos}))
    ref = AutoTokenizer.from_pretrained(str(folder))
    model, tok = load_init(f"hf:{folder}")
    assert (model.config.bos_token_id, model.config.eos_token_id) == (2, 3)
    for text in [*SENTENCES, ""]:
        assert tok.encode(text).ids == ref(text).input_ids + [3]
    assert ref(SENTENCES[0]).input_ids[0] == 2


def _mistral_folder(folder, tokenizer, drop=(), **config):
    """A random 1-layer Mistral (no sliding window) saved by transformers, its config.json then given `config` and
    without the keys in `drop`. Returns (folder, the transformers model as it loads that folder)."""
    from transformers import AutoModelForCausalLM, MistralConfig, MistralForCausalLM

    torch.manual_seed(0)
    cfg = MistralConfig(vocab_size=512, hidden_size=64, intermediate_size=96, num_hidden_layers=1,
                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, sliding_window=None,
                        bos_token_id=2, eos_token_id=3, pad_token_id=0)  # fmt: skip
    MistralForCausalLM(cfg).save_pretrained(folder)
    path = folder / "config.json"
    raw = {**json.loads(path.read_text()), **config}
    path.write_text(json.dumps({k: v for k, v in raw.items() if k not in drop}), encoding="utf-8")
    (folder / "tokenizer.json").write_text(tokenizer.to_str(), encoding="utf-8")
    return folder, AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()


@pytest.mark.parametrize(("config", "drop", "window"), [
    ({}, ["sliding_window"], 4096),  # absent: transformers' default window, longer than the 64 positions
    ({"sliding_window": 64}, [], 64),  # as long as max_position_embeddings (refused before stop 54)
    ({"attention_bias": True}, [], None),  # transformers' Mistral has no attention biases whatever the key says
])  # fmt: skip
def test_mistral_imports_as_transformers_runs_it(tmp_path, tokenizer, config, drop, window, one_thread):
    """A sliding window that covers every position the model takes changes nothing (ConanModel refuses longer
    sequences): hidden states at all 64 positions equal transformers' (a shorter window is refused, test_errors)."""
    folder, ref = _mistral_folder(tmp_path / "mistral", tokenizer, drop, **config)
    assert ref.config.sliding_window == window
    model, _ = load_init(f"hf:{folder}")
    ids = torch.randint(4, 400, (1, 64), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = model(ids, torch.ones_like(ids), mask_mode="causal")
        assert (ours - ref.model(input_ids=ids).last_hidden_state).abs().max().item() <= 1e-5
