"""One supervised micro-batch: the task's texts -> ONE bidirectional forward -> its MRL loss (+ DHNM update).

Each task kind builds its texts and a loss closure over the batch's embeddings; ``Stepper.BUILDERS`` maps a kind
to its builder (clr trains like retrieval). Texts get the model's role prompts (``ConanConfig.prompt``: empty for
the paper's decoder, "query: "/"passage: " for multilingual-e5-small), the same ones the encoder adds at
evaluation: queries 'query', positives and negatives 'document', STS and classification texts no role.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import torch
from tokenizers import Tokenizer
from torch import nn

from conan_model import encode_batch

from . import loop
from .losses import gather_with_grad
from .metrics import flops_per_token
from .multitask import Task, TaskBatch, text_id
from .objectives import cosent, label_info_nce, mrl_loss, retrieval_info_nce
from .supervised_config import SupervisedConfig

LossOf = Callable[[torch.Tensor], tuple[torch.Tensor, bool]]  # embeddings -> (loss, is it global over ranks)


class Stepper:
    """One micro-batch of any task: texts -> ONE bidirectional forward -> MRL task loss (+ DHNM update)."""

    def __init__(self, cfg: SupervisedConfig, rt: Any, model_config: Any, tokenizer: Tokenizer,
                 tasks: dict[str, Task], dims: list[int], weights: list[float] | None) -> None:  # fmt: skip
        self.cfg, self.rt, self.model_config, self.tokenizer = cfg, rt, model_config, tokenizer
        self.tasks, self.dims, self.weights = tasks, dims, weights

    def __call__(self, module: nn.Module, batch: TaskBatch) -> loop.StepResult:
        task = self.tasks[batch.task]
        texts, loss_of = self.BUILDERS[task.kind](self, task, batch)
        enc = encode_batch(self.tokenizer, texts, self.cfg.max_length, self.rt.device)
        emb = module("embed", enc.input_ids, enc.attention_mask, mask_mode="bidirectional")
        with torch.autocast(self.rt.device.type, enabled=False):  # similarities in float32
            loss, is_global = loss_of(emb.float())
        tokens = sum(enc.lengths)
        flops = flops_per_token(self.model_config, enc.input_ids.shape[1], lm_head=False) * tokens
        # A global loss (gathered embeddings) is the same on every rank: x world turns DDP's mean into the sum.
        scale = self.rt.world_size if is_global else 1
        return loop.StepResult(loss=loss * scale, value=loss.detach(), tokens=tokens, flops=flops,
                               metrics={"task": batch.task})  # fmt: skip

    def prompted(self, texts: list[str], role: str | None) -> list[str]:
        prompt = self.model_config.prompt(role)
        return [prompt + t for t in texts] if prompt else texts

    def retrieval(self, task: Task, batch: TaskBatch) -> tuple[list[str], LossOf]:
        k, b, device = task.hard_negatives, len(batch.rows), self.rt.device
        queries = [task.rows[r]["query"] for r in batch.rows]
        positives = [task.rows[r]["positive"] for r in batch.rows]
        slots = [task.slots(r) for r in batch.rows]
        negatives = [t for row in slots for t in row if t is not None]
        mask = torch.tensor([[t is not None for t in row] for row in slots], dtype=torch.bool).view(b, k)
        # text ids: no candidate that is a positive of the query's text, or a repeated text, counts as a negative
        text_ids = {"pos_ids": torch.tensor([text_id(t) for t in positives], dtype=torch.long),
                    "neg_ids": torch.tensor([[text_id(t) if t else -1 for t in row] for row in slots],
                                            dtype=torch.long).view(b, k),
                    "query_ids": torch.tensor([text_id(t) for t in queries], dtype=torch.long),
                    # labelled-match groups: no candidate the data labels a match of the row's query is a negative
                    "query_groups": torch.tensor([task.row_groups[r] for r in batch.rows], dtype=torch.long),
                    "pos_groups": torch.tensor([task.groups.get(t, -1) for t in positives], dtype=torch.long),
                    "neg_groups": torch.tensor([[task.groups.get(t, -1) if t else -1 for t in row] for row in slots],
                                               dtype=torch.long).view(b, k)}  # fmt: skip
        # DHNM's queries; a task without hard negatives (K = 0) has no pools, so no DHNM either
        qids = torch.tensor([task.dhnm_ids[r] for r in batch.rows] if task.dhnm else [-1] * b, dtype=torch.long)

        def loss_of(emb: torch.Tensor) -> tuple[torch.Tensor, bool]:
            q, p = emb[:b], emb[b : 2 * b]
            negs = emb.new_zeros(b, k, emb.shape[1])
            negs[mask.to(device)] = emb[2 * b :]
            # every rank's rows: the loss is global over the whole batch (in-batch and shared negatives)
            all_q, all_p, all_negs, all_mask, all_qids = (
                gather_with_grad(x.to(device)) for x in (q, p, negs, mask.long(), qids))  # fmt: skip
            all_ids = {name: gather_with_grad(x.to(device)) for name, x in text_ids.items()}

            def fn(q_: torch.Tensor, p_: torch.Tensor, n_: torch.Tensor) -> tuple[torch.Tensor, Any]:
                return retrieval_info_nce(q_, p_, n_ if k else None, self.cfg.temperature,
                                          neg_mask=all_mask.bool(), shared_negatives=self.cfg.share_hard_negatives,
                                          **all_ids)  # fmt: skip

            loss, _, own = mrl_loss(fn, [all_q, all_p, all_negs], self.dims, self.weights)
            if own is not None and task.dhnm is not None:
                task.dhnm.update(all_qids.tolist(), own.cpu())
            return loss, True

        return self.prompted(queries, "query") + self.prompted(positives + negatives, "document"), loss_of

    def classification(self, task: Task, batch: TaskBatch) -> tuple[list[str], LossOf]:
        # The label set comes from the global batch (the same on every rank): K negative labels per row, sampled
        # from its own file's labels; a row scores only the labels of its own file (others are masked out).
        label_set = set()
        for r in batch.global_rows:
            gold = str(task.rows[r]["label"])
            others = [lab for lab in task.label_spaces[task.space_of[r]] if lab != gold]
            rng = random.Random(f"{batch.seed}-{r}")
            label_set.update([gold, *rng.sample(others, min(task.hard_negatives, len(others)))])
        labels = sorted(label_set)
        rows = [task.rows[r] for r in batch.rows]
        targets = torch.tensor([labels.index(str(r["label"])) for r in rows], device=self.rt.device)
        b = len(rows)
        allowed = None
        if len(task.label_spaces) > 1:
            spaces = [set(space) for space in task.label_spaces]
            allowed = torch.tensor([[lab in spaces[task.space_of[r]] for lab in labels] for r in batch.rows],
                                   device=self.rt.device)  # fmt: skip

        def loss_of(emb: torch.Tensor) -> tuple[torch.Tensor, bool]:
            # Local loss over the shared label set: DDP's gradient mean is then the global batch's gradient.
            fn = lambda q, lab: label_info_nce(q, lab, targets, self.cfg.temperature, allowed)  # noqa: E731
            return mrl_loss(fn, [emb[:b], emb[b:]], self.dims, self.weights)[0], False

        return self.prompted([r["text"] for r in rows] + labels, None), loss_of

    @staticmethod
    def partner(task: Task, r: int, seed: int) -> str | None:
        """Row r's zero-scored text: its given negative, else another row's positive from a seeded start, walking on;
        never a text the data labels a match of r's query (its component over every task's pairs). Before stop 50 a
        given negative was taken as it was (csnli_nli_zh line 2706 gives its positive) and the draw took any other
        row's positive: a query's own positive, repeated on another row, was scored 1 and 0 in one batch. None when
        every row is one component (such a task is refused when the stage builds its tasks)."""
        row, n = task.rows[r], len(task.rows)
        group = task.groups.get(row["query"])
        negative = row.get("negative")
        if negative and (group is None or task.groups.get(negative) != group):
            return negative
        start = r + 1 + random.Random(f"{seed}-{r}").randrange(n - 1)
        for i in range(start, start + n):
            text = task.rows[i % n]["positive"]
            if i % n != r and (group is None or task.groups.get(text) != group):
                return text
        return None

    def sts(self, task: Task, batch: TaskBatch) -> tuple[list[str], LossOf]:
        pairs = []
        for r in batch.rows:
            row = task.rows[r]
            if "sentence1" in row:
                pairs.append((row["sentence1"], row["sentence2"], float(row["score"])))
                continue
            pairs.append((row["query"], row["positive"], 1.0))
            partner = self.partner(task, r, batch.seed)
            if partner is not None:
                pairs.append((row["query"], partner, 0.0))
        n = len(pairs)
        scores = torch.tensor([s for _, _, s in pairs], device=self.rt.device)

        def loss_of(emb: torch.Tensor) -> tuple[torch.Tensor, bool]:
            e1, e2 = gather_with_grad(emb[:n]), gather_with_grad(emb[n:])
            fn = lambda a, b: cosent(a, b, gather_with_grad(scores), self.cfg.cosent_scale)  # noqa: E731
            return mrl_loss(fn, [e1, e2], self.dims, self.weights)[0], True

        return self.prompted([a for a, _, _ in pairs] + [b for _, b, _ in pairs], None), loss_of

    # task kind -> the builder of its texts and loss; a cross-lingual (clr) task trains like retrieval
    BUILDERS: dict[str, Callable[..., tuple[list[str], LossOf]]] = {
        "retrieval": retrieval, "clr": retrieval, "classification": classification, "sts": sts,
    }  # fmt: skip
