"""The workdir contract: one upgrade path for config.json files saved before a field existed."""

import json

from ega_jax import runs


def test_an_old_config_json_is_upgraded_in_one_place_and_a_current_one_is_left_alone(tmp_path):
    from configs import gan
    current = gan.get_config()
    assert runs.upgrade(gan.get_config()).to_dict() == current.to_dict()       # nothing to add
    old = json.loads(current.to_json_best_effort())
    for section, fields in (("gan", ("conditioning", "mismatch", "mode_seeking")),
                            ("generate", ("candidates", "overlap_penalty", "score")),
                            ("gan_optimizer", ("b1", "b2"))):
        for f in fields:
            del old[section][f]
    for f in ("packed", "packed_backends", "length_bucket", "word_dropout", "decoder_dropout"):
        del old["stage1"]["text_vae"]["text_vae"][f]            # nested: a prerequisite's model section
    del old["stage1"]["text_vae"]["optimizer"]["b1"]
    del old["stage1"]["text_vae"]["optimizer"]["decay_steps"]
    del old["data"]["danmaku_only"]
    (tmp_path / runs.CONFIG).write_text(json.dumps(old))
    loaded = runs.load_config(str(tmp_path))
    # Runs saved before these fields behaved as the paper's settings and the padded step
    assert (loaded.gan.conditioning, loaded.gan.mismatch, loaded.gan.mode_seeking) == ("concat", 0.0, 0.0)
    assert (loaded.generate.candidates, loaded.generate.overlap_penalty, loaded.generate.score) == (1, 0.0, "latent")
    model = loaded.stage1.text_vae.text_vae
    assert (model.packed, tuple(model.packed_backends), model.length_bucket, model.word_dropout,
            model.decoder_dropout) == (False, ("cpu",), 0, 0.0, 0.0)
    assert loaded.stage1.text_vae.optimizer.b1 == 0.9 and loaded.gan_optimizer.b2 == 0.999
    assert loaded.stage1.text_vae.optimizer.decay_steps == 0                 # a constant learning rate
    assert loaded.data.danmaku_only == ""
    # a section of the same name that is not the model's (stage1.text_vae is a whole config) gets nothing
    assert "packed" not in loaded.stage1.text_vae
