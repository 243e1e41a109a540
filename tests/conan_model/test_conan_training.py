"""A tiny model learns real news text (en + zh) with the LM loss: the whole stack trains end to end."""

import pytest
import torch

from conan_model import ConanConfig, ConanModel, iter_jsonl_texts, train_tokenizer_from_texts


@pytest.mark.slow
def test_tiny_lm_loss_drops_on_real_text(shared_data, one_thread):
    files = [shared_data / "train" / name / "train.jsonl" for name in ("news_en_raw", "news_zh_raw")]
    texts = list(iter_jsonl_texts(files, max_rows=300))
    tok = train_tokenizer_from_texts(texts, vocab_size=1024)
    seq_len = 64
    stream = [i for enc in tok.encode_batch(texts) for i in enc.ids]
    data = torch.tensor(stream[: len(stream) // seq_len * seq_len]).view(-1, seq_len)
    held_out, train = data[:32], data[32:]

    torch.manual_seed(0)
    model = ConanModel(ConanConfig.preset("tiny", vocab_size=tok.get_vocab_size(), max_length=seq_len))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    with torch.no_grad():
        initial = model.lm_loss(held_out).item()
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        loss = model.lm_loss(train[torch.randint(len(train), (16,), generator=g)])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        final = model.lm_loss(held_out).item()
    assert final < 0.8 * initial, (initial, final)
