"""harness.encoding.HarnessEncoder: the order texts reach the model in, and that vectors come back in input order."""

import numpy as np

from harness.data import default_data_root, discover_tasks, read_rows
from harness.encoding import HarnessEncoder


def test_texts_reach_the_model_shortest_first_and_vectors_come_back_in_input_order(minilm) -> None:
    """The model gets a call's distinct texts shortest first (by characters: windows of like lengths pad little),
    and each vector lands at its text's place, duplicates included: the same vectors as texts encoded one
    batch at a time in input order (to float rounding: other batches, other kernels' sums)."""
    rows = read_rows(discover_tasks(default_data_root())["SciFact"], "corpus.jsonl")
    corpus = list(dict.fromkeys(r["text"] for r in rows))[:80]
    texts = [*corpus, corpus[3], corpus[0]]
    seen: list[str] = []
    real = minilm.encode_batch

    def recording(batch: list[str], role: str | None) -> np.ndarray:
        seen.extend(batch)
        return real(batch, role)

    minilm.encode_batch = recording
    try:
        vectors = HarnessEncoder(minilm, batch_size=16, show_progress=False).encode_texts(texts, "document")
    finally:
        minilm.encode_batch = real
    windows = [seen[lo:hi] for lo, hi in ((0, 16), (16, 48), (48, 80))]  # window_spans(80, 1024, 16)
    assert sorted(seen) == sorted(corpus)  # each distinct text once
    lengths = [(min(map(len, w)), max(map(len, w))) for w in windows]
    assert lengths[0][1] <= lengths[1][0] and lengths[1][1] <= lengths[2][0]  # each window's texts after the last's
    expected = np.concatenate([real(texts[lo : lo + 16], "document") for lo in range(0, len(texts), 16)])
    np.testing.assert_allclose(vectors, expected, atol=1e-5)
