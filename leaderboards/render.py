"""Leaderboard markdown: a ranking table, per-task scores, optional per-dimension scores, and how to read them."""

from __future__ import annotations

from harness.runs import bullets, counted, md_table, percent
from leaderboards.build import Board, reported_means
from leaderboards.table import Entry, Row, build_rows

TYPE_SHORT = {
    "Classification": "Class.", "Clustering": "Clust.", "PairClassification": "PairClass.",
    "Reranking": "Rerank.", "Retrieval": "Retr.", "STS": "STS", "Summarization": "Summ.",
    "BitextMining": "Bitext", "MultilabelClassification": "MultiLabel", "InstructionRetrieval": "InstrRetr.",
}  # fmt: skip


SETTINGS_NOTE = (
    "- **Settings that differ**: rows of one model (same fingerprint, else the same `--model` spec) whose runs "
    "differ in a setting that can move scores (run.json's `identity`: max length, dtype, device, pooling, prompts, "
    "dim view, similarity, kernels; not the MRL dims scored besides) name those settings with their "
    "values: the gap between such rows is the settings', not the model's. Rows of any models scored under other "
    "versions of mteb or of its scorers' packages (`scoring`: scikit-learn, scipy, numpy, pytrec-eval-terrier) "
    "name those too. Beside published rows, a row of ours "
    "computed below float32 (bfloat16: `--dtype auto` on a CPU with native bf16) also names its dtype: published "
    "scores are mteb's own runs'."
)

KEPT_NOTE = (
    "- `§` **other settings**: the run directory kept this task's result from an earlier run whose settings (any "
    "that keys a result, or the data root) differ from the ones its run.json records for the run, which the row "
    'stands for; summary.md lists such tasks under "Tasks kept from runs with other settings" and the notes name '
    "what differs. The score is shown but counts as a gap: not in the row's coverage, means or Borda points, since "
    "the row has no score under its own settings; the other rows rank the task among themselves as usual."
)

PARTIAL_NOTE = (
    "- `¶` **partial published score**: the published result file lacks some of the splits or subsets this table "
    "scores the task on (the suite's selection with `--suite`, else mteb's whole task), so the number is the mean "
    "over those it holds, not the task's score; the notes name what is missing. It counts in the row's coverage and "
    "means (which carry `¶`); the task earns no Borda points for any row when another row's score covers other "
    "splits or subsets."
)


def cell(entry: Entry, task: str, mixed: bool = False) -> str:
    """Score ×100; `*` when it comes from a mirror of the task rather than the official data, `‡` when our runs
    scored the task on different data (``mixed``), so this score does not compare with the other runs'; `§` when
    the run kept it from a run with other settings than its own (counted nowhere in the row); `¶` when a published
    file lacks some of the task's splits or subsets (the mean over those it holds)."""
    mirror = "*" if entry.sources.get(task) == "mirror" else ""
    if task in entry.kept:
        return percent(entry.kept[task]) + mirror + "§"
    if task not in entry.scores:
        return "—"
    partial = "¶" if task in entry.partial else ""
    return percent(entry.scores[task]) + mirror + partial + ("‡" if mixed and entry.kind == "run" else "")


def _type_order(board: Board) -> list[str]:
    return list(dict.fromkeys(board.types[t] for t in board.tasks))


def different_data(board: Board) -> set[str]:
    """The tasks our runs scored on different data (`‡`). A task that ranks no row only because a published file
    lacks splits (`¶`, mixed as ["splits"]) is not one: the runs agree, and `¶` marks the published cells."""
    return {task for task, keys in board.mixed.items() if keys != ["splits"]}


def rank_sets_note(rows: list[Row]) -> list[str]:
    """How to read `1 (A)`: the board split into rows that share no task scored on the same data."""
    if not any(r.group for r in rows):
        return []
    sets: dict[str, list[str]] = {}
    for r in rows:
        sets.setdefault(r.group, []).append(r.entry.label)
    named = "; ".join(f"{name}: {', '.join(labels)}" for name, labels in sets.items())
    return [f"- **Ranked apart** (`1 (A)`: rank 1 among the rows of set A): no task scores rows of two sets on the "
            "same data (`‡`: a sample beside published full splits, another split or other rows), so each set is "
            f"ranked on its own, `n_rows` counting its rows, and points compare only within a set — {named}."]


def ranking_table(board: Board, rows: list[Row]) -> str:
    kinds = _type_order(board)
    counts = {k: sum(1 for t in board.tasks if board.types[t] == k) for k in kinds}
    settings = ["Settings that differ"] if board.settings else []
    headers = ["Rank (Borda)", "Model", *settings, "Coverage", "Mean (Task)", "Mean (TaskType)", "Borda points"]
    headers += [f"{TYPE_SHORT.get(k, k)} ({counts[k]})" for k in kinds]
    body = []
    for r in rows:
        mixed_types = {board.types[t] for t in different_data(board) if t in r.entry.scores}
        partial_types = {board.types[t] for t in r.entry.partial if t in board.types}
        partial = ("†" if r.covered < r.total else "") + ("‡" if mixed_types else "") + ("¶" if partial_types else "")
        # a type column over fewer of its tasks than the header counts is a mean of other tasks than a full row's
        short_types = {k for k in kinds if sum(1 for t in board.tasks if board.types[t] == k and t in r.entry.scores)
                       < counts[k]}  # fmt: skip
        mirrors = sum(1 for t in board.tasks if t in r.entry.scores and r.entry.sources.get(t) == "mirror")
        model = r.entry.label + (f" ({mirrors} mirror)" if mirrors else "")
        differ = [board.settings.get(r.entry.label, "")] if settings else []
        rank = f"{r.rank} ({r.group})" if r.group else r.rank
        body.append([rank, model, *differ, f"{r.covered}/{r.total}", percent(r.mean_tasks) + partial,
                     percent(r.mean_types) + partial, f"{r.points:g}",
                     *[percent(r.per_type.get(k)) + ("†" if k in short_types and r.per_type.get(k) is not None else "")
                       + ("‡" if k in mixed_types else "") + ("¶" if k in partial_types else "") for k in kinds]])
    return md_table(body, headers=headers, disable_numparse=True)


def task_table(board: Board, rows: list[Row]) -> str:
    headers = ["Task", "Type", "Metric", *[r.entry.label for r in rows]]
    mixed = different_data(board)
    body = [[t + (" ‡" if t in mixed else ""), board.types[t], board.metrics.get(t, ""),
             *[cell(r.entry, t, t in mixed) for r in rows]] for t in board.tasks]  # fmt: skip
    return md_table(body, headers=headers, disable_numparse=True)


def dims_tables(board: Board, rows: list[Row]) -> list[str]:
    """Per model with MRL results on the table's tasks: tasks × (each dim, full), and a mean row over the tasks
    scored at dims, at each dim every one of them was scored at; a dim only some were scored at reads `—` there
    and a line under the table names it with its tasks, as the report's curves do (before, a run whose tasks were
    scored at different dim sets lost its mean row without a word). A task the runs scored on different data
    carries `‡` here too, and so does a mean over it (before stop 54, audit, only the main tables marked them). A
    mean over fewer of the tasks the tables' means cover together carries `†`, with a line naming what it lacks
    (before stop 67, a walk, means over different tasks sat side by side unmarked). A
    The full column names the run's width, `full (384)`, as summary.md and the efficiency report do (before stop 69,
    a walk, "full" read alike for a 384-d and a 128-d model). A
    run with no dim result on the table's tasks (none of them in a --suite) gets no table: the notes name its
    tasks outside the suite (before, a table of headers alone); one with no dim result at all is named under the
    tables."""
    out = []
    mixed = different_data(board)
    without = []  # our runs with no dim result (run without --dims): named below the tables, as the report does
    averaged = _mean_tasks(board, rows)
    every = [t for t in board.tasks if any(t in tasks for tasks in averaged.values())]
    for r in rows:
        e = r.entry
        tasks = [t for t in board.tasks if t in e.scores]
        dims = sorted(d for d in e.dim_scores if any(t in e.dim_scores[d] for t in tasks))
        if not dims:
            without += [e.label] if e.kind == "run" and not e.dim_scores else []
            continue
        body = [[t + (" ‡" if t in mixed else ""), *[percent(e.dim_scores[d].get(t)) for d in dims],
                 percent(e.scores[t])] for t in tasks]  # fmt: skip
        scored = [t for t in tasks if any(t in e.dim_scores[d] for d in dims)]
        shared = [d for d in dims if all(t in e.dim_scores[d] for t in scored)]
        if shared:
            means = {d: sum(e.dim_scores[d][t] for t in scored) / len(scored) for d in shared}
            full = sum(e.scores[t] for t in scored) / len(scored)
            fewer = [t for t in every if t not in scored]  # another table's mean covers them: `†`, as for gaps
            marked = (" †" if fewer else "") + (" ‡" if mixed.intersection(scored) else "")
            body.append([f"**Mean ({counted(len(scored), 'task')})**{marked}", *[percent(means.get(d)) for d in dims],
                         percent(full)])  # fmt: skip
        out += [f"### {e.label}", "",
                md_table(body, headers=["Task", *map(str, dims), f"full ({e.width})" if e.width else "full"],
                         disable_numparse=True),
                ""]  # fmt: skip
        if shared and fewer:  # before stop 67 (a walk) unmarked beside means over other tasks
            out += [f"`†` This mean is over {', '.join(scored)} only; another table's mean also covers "
                    f"{', '.join(fewer)}: means over different tasks do not compare.", ""]  # fmt: skip
        if partial := [d for d in dims if d not in shared]:
            which = "; ".join(f"dim {d} (scored on {', '.join(t for t in scored if t in e.dim_scores[d])}, not on "
                              f"{', '.join(t for t in scored if t not in e.dim_scores[d])})" for d in partial)
            out += [("Left out of the mean row" if shared else "No mean row: no dim was scored on every task")
                    + f", a mean being over every task with dim results: {which}.", ""]  # fmt: skip
    if out and without:  # before stop 65 such a run was left out without a word (a walk)
        out += [f"No MRL results for {', '.join(without)} (run without `--dims`).", ""]
    return out


def _mean_tasks(board: Board, rows: list[Row]) -> dict[str, list[str]]:
    """Per row with a `--dims` mean row, the tasks that mean is over (as `dims_tables` picks them)."""
    means = {}
    for r in rows:
        e = r.entry
        tasks = [t for t in board.tasks if t in e.scores]
        dims = [d for d in e.dim_scores if any(t in e.dim_scores[d] for t in tasks)]
        scored = [t for t in tasks if any(t in e.dim_scores[d] for d in dims)]
        if scored and any(all(t in e.dim_scores[d] for t in scored) for d in dims):
            means[e.label] = scored
    return means


def reported_section(board: Board) -> list[str]:
    rows = reported_means(board.benchmark) if board.reported else []
    if not rows:
        return []
    kinds = list(dict.fromkeys(k for row in rows for k in row["means"]))
    body = [[row["model"], *[row["means"].get(k, "—") for k in kinds], row["source"]] for row in rows]
    return ["## Reported averages (from papers; no per-task scores available to recompute them)", "",
            md_table(body, headers=["Model", *[TYPE_SHORT.get(k, k) for k in kinds], "Source"],
                     disable_numparse=True), ""]  # fmt: skip


def render(board: Board) -> str:
    rows = build_rows(board.entries, board.tasks, board.types, board.groups)
    runs = sum(1 for e in board.entries if e.kind == "run")
    lines = [
        f"# Leaderboard: {board.title}", "",
        f"{len(board.tasks)} task(s); {runs} run(s) of ours and {len(board.entries) - runs} published model(s). "
        "Scores are mteb main scores ×100.", "",
        "## Ranking", "", ranking_table(board, rows), "",
        "## Scores per task", "", task_table(board, rows), "",
    ]  # fmt: skip
    if board.dims:
        tables = dims_tables(board, rows)
        lines += ["## Scores per embedding dimension (MRL)", ""]
        if tables:
            lines += tables
        elif any(e.dim_scores for e in board.entries):  # only on tasks outside the suite
            lines += [f"No run has MRL results on the tasks of {board.title}; the notes name the run tasks outside "
                      "it.", ""]  # fmt: skip
        else:
            lines += ["No run has results under `experiments/embed_dim_<d>/` (run `harness run --dims ...`).", ""]
    lines += reported_section(board)
    lines += [
        "## How to read this", "",
        "- **Mean (Task)** is the plain mean over tasks; **Mean (TaskType)** is the mean of the per-type means "
        "(MTEB's two averages). Both use only the tasks a row has: `†` marks a row with gaps, whose means are "
        "over fewer tasks and not comparable with complete rows; on a task-type column, `†` marks a mean over "
        "fewer of that type's tasks than the header counts.",
        "- **Coverage** `n/N`: tasks with a score out of the tasks in this table; `—` is a task the row lacks.",
        "- **Borda**: per task, the rows with a score are ranked (1 = best) and each earns `n_rows − rank` points; "
        "a missing task earns 0. Scores are compared at the precision shown (two decimals ×100); tied rows share "
        "the average of the ranks they span. Rows with equal points share the better final rank (1, 1, 3).",
        *rank_sets_note(rows),
        "- `*` **mirror**: the run scored the task on local rows (the data root), not on mteb's official dataset. "
        "Compare such a number with a published one only when the mirror is the full official split.",
        "- `‡` **different data**: our runs scored this task on different data (their recorded source, sampling, "
        "data source, split, subsets, main metric or data identity, a mirror's file hash, differ; the notes name the "
        "runs and the values), or our runs scored rows other than the ones published rows scored (a sample of the "
        "split, or for a classifier a train split other than mteb's, or rows not known to be mteb's whole split; "
        "run.json's `full_split`). The task earns no "
        "Borda points among rows that scored it on different data, published ones included; it stays in each row's "
        "coverage and means (overall and per type), which carry `‡` too and do not compare like for like.",
        "- Published rows come from a local copy of the embeddings-benchmark/results layout; see "
        "`leaderboards/published/PROVENANCE.md` for where each shipped number comes from.",
    ]  # fmt: skip
    if board.settings:
        lines.append(SETTINGS_NOTE)
    if any(e.kept for e in board.entries):
        lines.append(KEPT_NOTE)
    if any(e.partial for e in board.entries):
        lines.append(PARTIAL_NOTE)
    if board.notes:
        lines += ["", "### Notes", ""] + bullets(board.notes)
    return "\n".join(lines) + "\n"
