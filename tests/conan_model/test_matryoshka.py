"""The dims MRL training puts a loss on, as the supervised stage resolves them and the harness reads them back."""

from __future__ import annotations

from conan_model.matryoshka import mrl_dims, trained_dims


def test_trained_dims_read_a_training_config_as_the_supervised_stage_resolves_it() -> None:
    assert trained_dims({"stage": "supervised", "mrl_dims": "auto"}, 576) == mrl_dims(576)
    assert trained_dims({"stage": "supervised"}, 576) == mrl_dims(576)  # the key's default, "auto"
    assert trained_dims({"stage": "supervised", "mrl_dims": "none"}, 576) == [576]
    assert trained_dims({"stage": "supervised", "mrl_dims": "128,32,64"}, 128) == [32, 64, 128]
    assert trained_dims({"stage": "weak", "mrl_dims": "32,128"}, 128) == [128]  # no MRL loss outside supervised
    # not known: no config, no width, or dims this width cannot hold (a config of another model)
    assert trained_dims(None, 128) is None and trained_dims({"stage": "supervised"}, 0) is None
    assert trained_dims({"stage": "supervised", "mrl_dims": "32,576"}, 128) is None
    assert trained_dims({"stage": "supervised", "mrl_dims": "x"}, 128) is None
    # a dim weighted 0 trains nothing (a review, stop 69); weights follow the dims as written
    assert trained_dims({"stage": "supervised", "mrl_dims": "128,32,64", "mrl_weights": "1,0,1"}, 128) == [64, 128]
    assert trained_dims({"stage": "supervised", "mrl_dims": "auto", "mrl_weights": "0,0,0,0,0,0,1"}, 576) == [576]
    assert trained_dims({"stage": "supervised", "mrl_dims": "32,128", "mrl_weights": "1"}, 128) is None
