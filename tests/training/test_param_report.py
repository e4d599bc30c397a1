"""Trainable-parameter counts on the real pi0 / pi0.5 configs (eval_shape only)."""

from robosteer_assets.training.param_report import count, format_rows


def test_real_config_counts():
    full = count("pi0", "full_lora")
    # SigLIP 412,442,352 + head 2,361,344; both LoRAs 49,987,584; projections 3,248,160 (openpi_facts §1.4)
    assert full["total"] == 412_442_352 + 2_361_344 + 49_987_584 + 3_248_160
    st = count("pi0", "steering", n_heads=20, rank=8)
    ffn = 18 * (2 * 2048 * 8 + 2 * 8 * 16384 + 16384 * 8 + 8 * 2048)
    qo = 20 * ((2048 * 8 + 8 * 256) + (256 * 8 + 8 * 2048))
    assert st["total"] == ffn + qo + (18 * 2 * 2048 + 2048) + 3_248_160
    assert st["all_heads"] - st["total"] == 124 * qo // 20
    st05 = count("pi05", "steering")
    assert st["total"] - st05["total"] == 3_248_160 - 2_165_792
    assert "SigLIP" not in st["groups"] and st["paper"] == 78.8e6
    assert "pi05" in format_rows([st05])
