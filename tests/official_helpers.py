"""An official task's hub dataset prepared in a datasets cache from given rows, as an online load of the revision
mteb pins would lay it out, so `harness run --source official` runs offline on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets
import mteb
from datasets.naming import camelcase_to_snakecase


class _Rows(datasets.GeneratorBasedBuilder):
    """A builder whose splits are given rows; `load_dataset` later reads what it prepared from the cache."""

    rows: dict[str, list[dict[str, Any]]] = {}

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo()

    def _split_generators(self, dl_manager: Any) -> list[datasets.SplitGenerator]:
        return [datasets.SplitGenerator(name=s, gen_kwargs={"rows": r}) for s, r in self.rows.items()]

    def _generate_examples(self, rows: list[dict[str, Any]]) -> Any:
        yield from enumerate(rows)


def materialize(task_name: str, config: str, splits: dict[str, list[dict[str, Any]]], cache_dir: Path,
                revision: str | None = None) -> Path:  # fmt: skip
    """Prepare one config of a task's hub dataset in the datasets cache, as an online load would, at the revision
    mteb pins (or `revision`); returns the prepared folder."""
    dataset = mteb.get_task(task_name).metadata.dataset
    builder_cls = type("Rows", (_Rows,), {"rows": splits, "BUILDER_CONFIGS": [datasets.BuilderConfig(name=config)]})
    builder = builder_cls(cache_dir=str(cache_dir), config_name=config, hash=revision or dataset["revision"],
                          dataset_name=camelcase_to_snakecase(dataset["path"].split("/")[-1]),
                          repo_id=dataset["path"])  # fmt: skip
    builder.download_and_prepare()
    return Path(builder.cache_dir)
