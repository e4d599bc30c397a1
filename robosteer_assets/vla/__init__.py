"""pi0 / pi0.5 vision-language-action model (openpi's JAX model, reimplemented).

Modules: ``config`` (``Pi0Config``, presets, openpi's Gemma / SigLIP variant names),
``observation`` (the ``Observation`` pytree), ``model`` (the forward as functions over
a plain nested dict with openpi's exact parameter paths), ``nnx_model`` (``Pi0``, an NNX
module whose state is that same tree), ``augment`` (openpi's training image augmentation),
and the I/O side: ``checkpoint``, ``tokenizer``, ``normalize``, ``transforms``, ``policy``.
Nothing is imported here, so ``import robosteer_assets.vla.config`` stays light.

Python API::

    import jax, jax.numpy as jnp
    from robosteer_assets.vla import config as C, model as M
    from robosteer_assets.vla.observation import Observation

    # 1. a config: a named preset with optional overrides, or any variant combination
    cfg = C.get_config("pi0_tiny")                          # CPU size, float32
    real = C.get_config("pi05_droid")                        # gemma_2b + gemma_300m, So400m/14, bf16
    lcfg = cfg.replace(lora=C.LoRAConfig(8, 8.0, {"q", "attn_vec", "ffn"}, init_b="zeros"))
    own = C.Pi0Config(paligemma_variant="dummy", action_expert_variant="dummy",
                      siglip_variant="Ti/16", dtype="float32")

    # 2. parameters: shapes only (nothing allocated), fresh numpy init, or a checkpoint
    shapes = M.param_shapes(real)          # {"PaliGemma": {"img": ..., "llm": ...}, "action_in_proj": ...}
    params = M.init_params(cfg, seed=0)    # float32 numpy leaves, openpi paths
    # from robosteer_assets.vla.checkpoint import load_checkpoint
    # cfg, params, norm_stats, tokenizer = load_checkpoint("data/checkpoints/base")

    # 3. a batch: images in [-1, 1] per openpi camera key, masks, padded state, prompt tokens
    obs = Observation.from_dict({
        "image": {k: uint8_images_B_224_224_3 for k in C.IMAGE_KEYS},   # uint8 -> x/255*2-1
        "image_mask": {"right_wrist_0_rgb": jnp.zeros(B, bool)},         # missing masks = True
        "state": state_B_A, "tokenized_prompt": tokens_B_L, "tokenized_prompt_mask": mask_B_L})
    # (vla.transforms.make_observation builds this from DROID images, state and prompts)

    # 4. flow-matching loss per (example, action step): [B, T_a]
    loss = M.compute_loss(cfg, params, obs, actions_B_Ta_A, jax.random.key(0)).mean()
    grads = jax.grad(lambda p: M.compute_loss(cfg, p, obs, actions_B_Ta_A, jax.random.key(0)).mean())(params)

    # with openpi's training augmentation (crop / rotate / colour jitter), opt-in:
    from robosteer_assets.vla.augment import AugmentConfig
    loss_aug = M.compute_loss(cfg, params, obs, actions_B_Ta_A, jax.random.key(0), train=True, augment=AugmentConfig())

    # 5. sampling: 10 Euler steps from t = 1 (noise) with a prefix KV cache: [B, T_a, A]
    actions = M.sample_actions(cfg, params, obs, noise=noise_B_Ta_A)        # or rng=jax.random.key(1)
    sample = M.jitted(cfg, "sample_actions", num_steps=10)                  # cached jax.jit per config
    actions = sample(params, obs, noise=noise_B_Ta_A)

    # 6. per-head activations for head selection: attention output before attn_vec_einsum,
    #    every LLM layer and head, at one token: [B, L, N, H]
    acts = M.capture_heads(cfg, params, obs, position="first_suffix")        # pi0: the state token
    acts = M.capture_heads(cfg, params, obs, position="last_prefix")         # last valid prompt token
    acts, att = M.capture_heads(cfg, params, obs, attention_heads=[(0, 3), (1, 5)])  # + [B, 2, S]

    # 7. CMA-style ablation: Gaussian noise of std head_noise[l, n] on each head's output
    std = jnp.zeros((cfg.num_layers, cfg.num_heads)).at[1, 5].set(1.0)
    noisy = M.compute_loss(cfg, params, obs, actions_B_Ta_A, jax.random.key(0), head_noise=std)

The same as an NNX module (``nnx.split`` / ``nnx.Optimizer`` work; state paths = openpi's)::

    from robosteer_assets.vla.nnx_model import Pi0
    model = Pi0(cfg, params)
    loss_nnx = model.compute_loss(obs, actions_B_Ta_A, jax.random.key(0)).mean()

All entry points are jit-friendly with ``cfg`` static (``M.jitted`` caches them).
"""
