"""Jaxpr FLOP count of the training step (training.step_cost)."""

import jax
import jax.numpy as jnp

from robosteer_assets.training.step_cost import jaxpr_flops, step_flops


def test_scan_bodies_count_once_per_iteration_and_remat_is_counted():
    w = jnp.ones((7, 16, 16))

    def f(x):
        def body(h, wl):
            return jax.checkpoint(lambda a, b: jnp.tanh(a @ b))(h, wl), None
        return jax.lax.scan(body, x, w)[0].sum()

    x = jnp.ones((4, 16))
    per_layer = 2 * 4 * 16 * 16
    assert jaxpr_flops(jax.make_jaxpr(f)(x).jaxpr) == 7 * per_layer
    # backward w.r.t. x: remat re-runs the matmul, plus one activation-gradient matmul per layer
    assert jaxpr_flops(jax.make_jaxpr(jax.grad(f))(x).jaxpr) == 7 * 3 * per_layer


def test_conv_flops():
    k = jnp.ones((3, 3, 2, 5))  # HWIO

    def f(x):
        return jax.lax.conv_general_dilated(x, k, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))

    x = jnp.ones((1, 6, 6, 2))
    assert jaxpr_flops(jax.make_jaxpr(f)(x).jaxpr) == 2 * (4 * 4 * 5) * (3 * 3 * 2)


def test_steering_step_costs_less_than_full_lora_and_more_than_its_forward():
    st, lo = (step_flops("pi0_micro", m, batch=2) for m in ("steering", "full_lora"))
    assert st["forward_flops"] < st["step_flops"] < lo["step_flops"]
