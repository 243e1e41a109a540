"""`harness alignment`: do a model's embeddings mix languages, as the Conan-v2 paper's Fig. 3 shows after CLR?

Sentences from parallel files (English ↔ X) in several languages are embedded together, each text once per
language. A translation group is every text joined to another by a pair: one English sentence and its translations
(files that share English sentences, like the STS-B translations, give multi-way groups), and English sentences
given the same translation together. Measures, over all sentences of all languages:
- nearest neighbour (cosine, itself excluded): its translation, a same-language sentence, or another language's
  unrelated sentence. Separate language clusters show up as a high same-language rate;
- mixing ratio @k: among the k nearest neighbours outside the sentence's own translation group, the share in other
  languages divided by that share under random mixing. 1 = languages fully mixed, 0 = fully separated.
Plus a 2-D PCA (and optionally t-SNE) projection coloured by language. This is the one report that runs a model.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import UsageError
from harness.runs import atomic_write_text, md_table, shown_path
from reporting import plots

LANG2 = {"eng": "en", "deu": "de", "fra": "fr", "jpn": "ja", "kor": "ko", "rus": "ru", "spa": "es", "ara": "ar",
         "cmn": "zh", "zho": "zh"}  # fmt: skip
AXES = {"pca": "PC", "tsne": "t-SNE"}  # a projection's components, as its plot labels them ("PC 1", "PC 2")
NAMES = {"pca": "PCA", "tsne": "t-SNE"}  # a projection as its panel titles and the docs name it
MEASURES = ("nn_translation", "nn_same_language", "nn_other_language", "mixing_ratio")
N_BOOT = 1000  # resamples of the translation groups behind each 95% interval


@dataclass
class Corpus:
    texts: list[str]
    langs: list[str]
    groups: list[int]
    files: list[tuple[str, str, int, int]]  # (file, language pair, pairs used, pairs in the file)


def read_parallel(path: Path) -> tuple[list[tuple[str, str]], tuple[str, str]]:
    """Pairs and their two languages from a parallel folder/file (train/parallel_en_xx, multi/Tatoeba*).

    Only data that says it is parallel (source.json kind parallel_pairs, task.json type BitextMining) is read: an
    STS or retrieval folder also has two languages, but its pairs are not translations."""
    file, meta_file = _locate(Path(path))
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{meta_file}: unreadable ({exc})") from None
    kind = meta.get("kind") if meta_file.name == "source.json" else meta.get("type")
    if kind not in ("parallel_pairs", "BitextMining"):
        raise UsageError(f"--parallel {path}: not parallel data ({meta_file.name} says {kind!r}; expected a "
                         "parallel_pairs training set or a BitextMining task)")  # fmt: skip
    langs = meta.get("languages") or []
    if len(langs) != 2:
        raise UsageError(f"{meta_file}: 'languages' must name exactly two languages")
    keys = ("query", "positive") if kind == "parallel_pairs" else ("sentence1", "sentence2")
    pairs = [_pair(row, keys, f"{file}:{n}") for n, row in _rows(file)]
    if not pairs:  # before stop 49 (audit): "need sentences in at least two languages", naming no file
        raise UsageError(f"--parallel {path}: {file} holds no pairs")
    return pairs, (LANG2.get(langs[0], langs[0]), LANG2.get(langs[1], langs[1]))


def _locate(path: Path) -> tuple[Path, Path]:
    """The .jsonl a --parallel path reads and the source.json/task.json beside it naming its languages."""
    if not path.exists():
        raise UsageError(f"--parallel {path}: no such file or folder")
    if path.is_file() and path.suffix != ".jsonl":  # before stop 61 task.json was read as rows, "not a JSON line"
        raise UsageError(f"--parallel {path}: a task folder or its .jsonl is expected, not {path.name}; give "
                         f"{path.parent}")  # fmt: skip
    folder = path if path.is_dir() else path.parent
    file = path if path.is_file() else next((folder / n for n in ("train.jsonl", "test.jsonl")
                                             if (folder / n).is_file()), None)  # fmt: skip
    meta_file = next((folder / n for n in ("source.json", "task.json") if (folder / n).is_file()), None)
    if file is None or meta_file is None:
        raise UsageError(f"--parallel {path}: expected a folder (or its .jsonl) with train.jsonl/test.jsonl and "
                         "source.json/task.json naming the two languages")  # fmt: skip
    return file, meta_file


def _rows(file: Path) -> list[tuple[int, object]]:
    """(line number, parsed JSON) of each non-blank line; a line that is not JSON is an error naming it."""
    rows = []
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{file}: unreadable ({exc})") from None
    for n, line in enumerate(lines, 1):
        if line.strip():
            try:
                rows.append((n, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise UsageError(f"{file}:{n}: not a JSON line ({exc.msg})") from None
    return rows


def _pair(row: object, keys: tuple[str, str], where: str) -> tuple[str, str]:
    """A row's two texts, stripped: a row missing one (a misaligned file) is an error, not a pair with a blank."""
    texts = [row.get(key) if isinstance(row, dict) else None for key in keys]
    if not all(isinstance(t, str) and t.strip() for t in texts):
        raise UsageError(f"{where}: expected non-empty {keys[0]!r} and {keys[1]!r} texts, got {row!r:.200}")
    return texts[0].strip(), texts[1].strip()


def build_corpus(paths: list[Path], n_pairs: int, seed: int) -> Corpus:
    """Up to n_pairs random pairs per file, each text once per language. A translation group is every text joined
    to another by a pair: English with its translations, and two English sentences given the same translation
    (the STS-B files translate near-duplicates alike) share one group, so no pair is lost to the merge."""
    index: dict[tuple[str, str], int] = {}
    texts, langs, files, links = [], [], [], []
    seen: dict[Path, Path] = {}
    for path in paths:
        pairs, (la, lb) = read_parallel(path)
        key = _locate(Path(path))[0].resolve()
        if key in seen:
            raise UsageError(f"--parallel {path}: the same data as --parallel {seen[key]}; each pair would count twice")
        seen[key] = Path(path)
        if lb == "en":
            pairs, (la, lb) = [(b, a) for a, b in pairs], (lb, la)
        order = np.random.default_rng(seed).permutation(len(pairs))[:n_pairs]
        for i in order:
            ends = []
            for text, lang in zip(pairs[i], (la, lb), strict=True):
                if (lang, text) not in index:
                    index[(lang, text)] = len(texts)
                    texts.append(text)
                    langs.append(lang)
                ends.append(index[(lang, text)])
            links.append(ends)
        files.append((shown_path(path), f"{la}–{lb}", len(order), len(pairs)))
    return Corpus(texts, langs, _components(len(texts), links), files)


def _components(n: int, links: list[list[int]]) -> list[int]:
    """Group number of each of n items, items joined by links falling in one group (numbered in order of first
    appearance)."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in links:
        parent[root(a)] = root(b)
    numbers: dict[int, int] = {}
    return [numbers.setdefault(root(i), len(numbers)) for i in range(n)]


def mixing_stats(emb: np.ndarray, langs: list[str], groups: list[int], k: int = 10,
                 seed: int = 0) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Per language and overall ('all'): nearest-neighbour kind rates and the mixing ratio @k (see module doc),
    each with its 95% interval under `<measure>_ci` (`group_interval`, resamples seeded by `seed`)."""
    x = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    lang, group = np.asarray(langs), np.asarray(groups)
    nn = sim.argmax(axis=1)
    translation = group[nn] == group
    same_lang = ~translation & (lang[nn] == lang)
    same_group = group[:, None] == group[None, :]
    sim[same_group] = -np.inf
    outside = (~same_group).sum(axis=1)
    kk = np.minimum(k, outside)
    top = np.argsort(-sim, axis=1)[:, :k]
    other = lang[top] != lang[:, None]
    observed = np.asarray([other[i, : kk[i]].mean() if kk[i] else np.nan for i in range(len(lang))])
    other_pool = ((lang[None, :] != lang[:, None]) & ~same_group).sum(axis=1)
    expected = np.where(outside > 0, other_pool / np.maximum(outside, 1), np.nan)
    ratio = np.where(expected > 0, observed / np.where(expected > 0, expected, 1), np.nan)
    per_sentence = dict(zip(MEASURES, (translation, same_lang, ~translation & ~same_lang, ratio), strict=True))
    out = {}
    for name, mask in [("all", np.ones(len(lang), bool))] + [(lg, lang == lg) for lg in sorted(set(langs))]:
        out[name] = {"sentences": int(mask.sum())}
        for measure, values in per_sentence.items():
            values = values[mask].astype(float)
            out[name][measure] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
            out[name][f"{measure}_ci"] = group_interval(values, group[mask], seed)
    return out


def group_interval(values: np.ndarray, groups: np.ndarray, seed: int, n_boot: int = N_BOOT) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean of per-sentence values (NaN: no value), resampling whole
    translation groups: a sentence and its translation share their fate, so resampling sentences one by one would
    count each group as more evidence than it is. It covers which pairs --n and --seed drew from the files."""
    finite = np.isfinite(values)
    if not finite.any():
        return float("nan"), float("nan")
    index = np.unique(groups, return_inverse=True)[1]
    sums = np.bincount(index, weights=np.where(finite, values, 0.0))
    counts = np.bincount(index, weights=finite.astype(float))
    draws = np.random.default_rng(seed).multinomial(len(sums), np.full(len(sums), 1 / len(sums)), size=n_boot)
    with np.errstate(invalid="ignore", divide="ignore"):  # a resample of groups without a value: NaN, left out
        means = (draws @ sums) / (draws @ counts)
    low, high = np.nanpercentile(means, [2.5, 97.5])
    return float(low), float(high)


def project(emb: np.ndarray, method: str, seed: int) -> np.ndarray:
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(emb)
    from sklearn.manifold import TSNE

    perplexity = min(30, max(1, len(emb) // 4))  # t-SNE needs 0 < perplexity < sentences; --n 1 gives 2 sentences
    return TSNE(n_components=2, random_state=seed, init="pca", perplexity=perplexity).fit_transform(emb)


def run_alignment(models: list[str], paths: list[Path], out: Path, *,
                  encode: Callable[[str, list[str], int], np.ndarray], n_pairs: int = 200, seed: int = 0,
                  tsne: bool = False, k: int = 10, batch_size: int = 32, model_args: Sequence[str] = (),
                  settings: dict[str, str] | None = None) -> Path:  # fmt: skip
    """Score and plot each model's vectors (``encode(spec, texts, batch_size)``, from the caller: reports never load
    a model); writes out/alignment.md and PNGs, returns the markdown path. ``settings``: spec → what computed its
    vectors (model, dtype, device), filled by the caller's encode by the time the report is written, and stated in
    it with the command that redoes the report (``model_args``: the model options it was given, --pooling,
    --device, --dtype)."""
    corpus = build_corpus(paths, n_pairs, seed)
    if len(set(corpus.langs)) < 2:
        only = ", ".join(sorted(set(corpus.langs)))
        raise UsageError(f"need sentences in at least two languages; --parallel {' '.join(map(str, paths))} gave "
                         f"{only} only")  # fmt: skip
    # The ratio @k of a sentence with k or fewer neighbours outside its translation group counts its whole pool:
    # 1 whatever the model (before stop 36 `--k 1000` on 100 sentences reported "1.00, fully mixed").
    fewest = len(corpus.groups) - int(np.bincount(corpus.groups).max())
    asked, k = k, min(k, max(fewest - 1, 0))  # 0: no ratio to measure (one translation group), NaN in the report
    if k < asked:
        print(f"harness alignment: --k {asked} lowered to {k}: a sentence has {fewest} neighbours outside its "
              "translation group here", file=sys.stderr)  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    stats, panels = {}, {"pca": [], "tsne": []}
    for spec in models:
        emb = encode(spec, corpus.texts, batch_size)
        stats[spec] = mixing_stats(emb, corpus.langs, corpus.groups, k, seed)
        for method in ("pca", "tsne") if tsne else ("pca",):
            title = panel_title(spec, method, stats[spec]["all"]["mixing_ratio"])
            panels[method].append((title, project(emb, method, seed), corpus.langs))
    for method, items in panels.items():
        png = out / f"alignment_{method}.png"
        if items:
            plots.projection(items, AXES[method], png)
        else:  # an earlier --tsne run's plot: left beside this report it would read as this run's
            png.unlink(missing_ok=True)
    command = shlex.join(["harness", "alignment", *[w for m in models for w in ("--model", shown_spec(m))],
                          "--parallel", *map(shown_path, paths), "--n", str(n_pairs), "--k", str(asked),
                          "--seed", str(seed), "--batch-size", str(batch_size), *(["--tsne"] if tsne else []),
                          *model_args,
                          "--out", shown_path(out)])  # fmt: skip
    path = out / "alignment.md"
    atomic_write_text(path, render(corpus, stats, k, tsne, n_pairs, settings or {}, asked, command, seed))
    return path


def panel_title(spec: str, method: str, ratio: float) -> str:
    """A projection panel's title: the model, the projection as the docs name it (before stop 61 "TSNE"), its ratio."""
    return f"{shown_spec(spec)} — {NAMES[method]} (mixing ratio {ratio:.2f})"


def shown_spec(spec: str) -> str:
    """A model spec as reports show it: a folder's path as `shown_path` shows it, never the machine's absolute one."""
    prefix, colon, target = spec.partition(":")
    return f"{prefix}:{shown_path(target)}" if colon and prefix in ("st", "hf", "conan") else spec


def _rate(measure: dict[str, Any], key: str) -> str:
    """A rate with its 95% interval, in percent: '2.5% [0.5, 5.0]'."""
    low, high = measure[f"{key}_ci"]
    return f"{100 * measure[key]:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"


def _ratio(measure: dict[str, Any]) -> str:
    """The mixing ratio with its 95% interval: '0.85 [0.80, 0.90]'."""
    low, high = measure["mixing_ratio_ci"]
    return f"{measure['mixing_ratio']:.2f} [{low:.2f}, {high:.2f}]"


def render(corpus: Corpus, stats: dict[str, dict[str, dict[str, Any]]], k: int, tsne: bool, n_pairs: int,
           settings: dict[str, str], asked_k: int | None = None, command: str = "", seed: int = 0) -> str:  # fmt: skip
    """alignment.md: the corpus, each model's measures with their intervals, and what redoes it (command, model)."""
    counts = {lg: corpus.langs.count(lg) for lg in sorted(set(corpus.langs))}
    summary = [[shown_spec(spec), _rate(s["all"], "nn_translation"), _rate(s["all"], "nn_same_language"),
                _rate(s["all"], "nn_other_language"), _ratio(s["all"])] for spec, s in stats.items()]  # fmt: skip
    lines = [
        "# Cross-lingual alignment", "",
        *([f"`{command}`", ""] if command else []),
        f"{len(corpus.texts)} sentences in {len(counts)} languages ("
        + ", ".join(f"{lg} {n}" for lg, n in counts.items()) + f"), {len(set(corpus.groups))} translation groups: "
        f"up to --n {n_pairs} pairs drawn per file with --seed {seed}.",
        "", md_table([list(f) for f in corpus.files], headers=["file", "languages", "pairs used", "pairs in file"]),
        "",
        *[f"**{name}** has only {total} pairs, fewer than --n {n_pairs}: all are used." for name, _, _, total
          in corpus.files if total < n_pairs],
        "## Language mixing", "",
        md_table(summary, headers=["Model", "NN is a translation", "NN same language", "NN other language",
                                   f"mixing ratio @{k}"], disable_numparse=True), "",
        "- **NN**: a sentence's nearest neighbour (cosine) among all sentences of all languages, itself excluded.",
        f"- **mixing ratio @{k}**: share of other-language sentences among the {k} nearest neighbours outside the "
        "sentence's own translation group, divided by that share under random mixing; 1 = languages fully mixed, "
        "0 = each language its own cluster (the paper's 'vanilla' picture). Read it with the first column: a "
        "model that scatters sentences at random also mixes languages, but rarely finds the translation."
        + (f" --k {asked_k} was lowered to {k}: with more neighbours than a sentence has outside its translation "
           "group the ratio counts its whole pool and is 1 whatever the model." if asked_k not in (None, k) else ""),
        f"- **[low, high]**: 95% interval, percentile bootstrap over the {len(set(corpus.groups))} translation "
        f"groups ({N_BOOT} resamples, seeded by --seed; a sentence and its translations are resampled together). "
        "It covers which pairs were drawn (another --seed draws others): rates whose intervals do not overlap "
        "differ by more than that noise, overlapping ones are not shown to differ. A rate of 0% or 100% gets a "
        "zero-width interval: the resamples see no other outcome, so read it as none (or all) of these sentences.",
        "",
        *[f"- **{shown_spec(spec)}** vectors: {settings[spec]}." for spec in stats if spec in settings],
        "", "![PCA projection coloured by language](alignment_pca.png)", "",
    ]  # fmt: skip
    if tsne:
        lines += ["![t-SNE projection coloured by language](alignment_tsne.png)", ""]
    for spec, s in stats.items():
        rows = [[lg, v["sentences"], _rate(v, "nn_translation"), _rate(v, "nn_same_language"), _ratio(v)]
                for lg, v in s.items() if lg != "all"]  # fmt: skip
        lines += [f"### {shown_spec(spec)}: per language", "",
                  md_table(rows, headers=["language", "sentences", "NN translation", "NN same language",
                                          f"mixing @{k}"], disable_numparse=True), ""]  # fmt: skip
    lines += ["The paper's Fig. 3 projects 1,000 MARC test sentences in each of en, ja, de, fr, zh, es (not "
              "parallel) with and without CLR training; here the sentences are parallel, so whether the nearest "
              "neighbour is the translation can be counted, not only seen."]  # fmt: skip
    return "\n".join(lines) + "\n"
