"""``Policy``: a checkpoint directory served on DROID requests (openpi_facts.md §4.1, §6, §8.13).

``Policy.from_checkpoint(dir).infer(obs)`` takes openpi's DROID request dict::

    observation/exterior_image_1_left   uint8 [H, W, 3]
    observation/wrist_image_left        uint8 [H, W, 3]
    observation/joint_position          float [7]
    observation/gripper_position        float [1] or scalar
    prompt                              str or bytes

validates it (clear errors for missing keys, wrong shapes / dtypes, oversize inputs), applies the
same transforms as training (``vla.transforms``), samples an action chunk with ``num_steps`` Euler
steps and returns ``{"actions": [T_a, 8] float64 (unnormalised), "policy_timing": {"infer_ms"}}``.
The noise comes from an rng sequence that starts at ``jax.random.key(seed)`` and is split once per
call (as openpi's Policy), unless explicit ``noise`` ``[T_a, action_dim]`` is given. Sampling is
jitted once per batch shape (the jit cache lives in ``vla.model.jitted``).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robosteer_assets.common.progress import get_logger
from robosteer_assets.common.images import resize_with_pad
from robosteer_assets.vla.transforms import DROID_ACTION_DIM, make_observation, unnormalize_actions

log = get_logger("vla.policy")

EXTERIOR_KEY = "observation/exterior_image_1_left"
WRIST_KEY = "observation/wrist_image_left"
JOINT_KEY = "observation/joint_position"
GRIPPER_KEY = "observation/gripper_position"
PROMPT_KEY = "prompt"
REQUIRED_KEYS = (EXTERIOR_KEY, WRIST_KEY, JOINT_KEY, GRIPPER_KEY, PROMPT_KEY)


class PolicyInputError(ValueError):
    """A request that does not match openpi's DROID observation format."""


@dataclass(frozen=True)
class PolicyConfig:
    """``num_steps``: Euler steps (openpi default 10); ``seed``: start of the rng sequence (openpi: 0);
    ``noise_scale``: the flow's starting noise is drawn from N(0, noise_scale^2) (openpi: 1; 0 integrates
    the flow from the origin, one deterministic chunk per observation); ``max_image_side`` /
    ``max_prompt_chars``: request size limits."""

    num_steps: int = 10
    seed: int = 0
    noise_scale: float = 1.0
    max_image_side: int = 2048
    max_prompt_chars: int = 2000
    default_prompt: str | None = None


def _image(obs: dict, key: str, cfg: PolicyConfig) -> np.ndarray:
    img = np.asarray(obs[key])
    if img.dtype != np.uint8:
        raise PolicyInputError(f"{key}: expected uint8 [H, W, 3], found dtype {img.dtype}")
    if img.ndim != 3 or img.shape[2] != 3 or min(img.shape[:2]) < 1:
        raise PolicyInputError(f"{key}: expected uint8 [H, W, 3], found shape {img.shape}")
    if max(img.shape[:2]) > cfg.max_image_side:
        raise PolicyInputError(f"{key}: image {img.shape[0]}x{img.shape[1]} exceeds the limit of "
                               f"{cfg.max_image_side} pixels per side")
    return img


def _vector(obs: dict, key: str, n: int) -> np.ndarray:
    try:
        v = np.asarray(obs[key], np.float64)
    except (TypeError, ValueError):
        raise PolicyInputError(f"{key}: expected {n} numbers, found {type(obs[key]).__name__}") from None
    if v.ndim == 0 and n == 1:
        v = v.reshape(1)
    if v.shape != (n,):
        raise PolicyInputError(f"{key}: expected shape ({n},){' or a scalar' if n == 1 else ''}, found {v.shape}")
    if not np.all(np.isfinite(v)):
        raise PolicyInputError(f"{key}: expected finite values, found {v.tolist()}")
    return v


def parse_request(obs: dict, cfg: PolicyConfig = PolicyConfig()) -> tuple[np.ndarray, np.ndarray, str]:
    """Validate a DROID request → (exterior uint8 [H, W, 3], wrist uint8 [H, W, 3], state [8], prompt)."""
    if not isinstance(obs, dict):
        raise PolicyInputError(f"request: expected a dict with keys {list(REQUIRED_KEYS)}, found {type(obs).__name__}")
    req = [k for k in REQUIRED_KEYS if k != PROMPT_KEY or cfg.default_prompt is None]
    missing = [k for k in req if k not in obs]
    if missing:
        raise PolicyInputError(f"request: missing keys {missing}; expected {list(REQUIRED_KEYS)}")
    ext, wrist = _image(obs, EXTERIOR_KEY, cfg), _image(obs, WRIST_KEY, cfg)
    state = np.concatenate([_vector(obs, JOINT_KEY, 7), _vector(obs, GRIPPER_KEY, 1)])
    prompt = obs.get(PROMPT_KEY, cfg.default_prompt)
    if isinstance(prompt, bytes):
        try:
            prompt = prompt.decode("utf-8")
        except UnicodeDecodeError:
            raise PolicyInputError("prompt: bytes are not valid UTF-8") from None
    if isinstance(prompt, np.ndarray) and prompt.ndim == 0:
        prompt = str(prompt)
    if not isinstance(prompt, str):
        raise PolicyInputError(f"prompt: expected str or bytes, found {type(prompt).__name__}")
    if len(prompt) > cfg.max_prompt_chars:
        raise PolicyInputError(f"prompt: {len(prompt)} characters exceed the limit of {cfg.max_prompt_chars}")
    return ext, wrist, state, prompt


def model_images(exterior: np.ndarray, wrist: np.ndarray, resolution: int) -> np.ndarray:
    """The request's two camera frames as the uint8 ``[1, 2, R, R, 3]`` batch ``make_observation``
    takes (``resize_with_pad``, the resize ingest applies to demonstration frames)."""
    return np.stack([resize_with_pad(exterior, resolution, resolution),
                     resize_with_pad(wrist, resolution, resolution)])[None]


class Policy:
    """A loaded checkpoint that maps DROID requests to action chunks.

    Thread-safe (``thread_safe = True``, read by the policy server): the only mutable state, the
    noise rng and the call counter, is advanced under a lock; the jitted sampler itself may run
    from several threads at once."""

    thread_safe = True

    def __init__(self, loaded, config: PolicyConfig = PolicyConfig()):
        import jax

        from robosteer_assets.vla import model

        self.cfg, self.norm_stats, self.tokenizer = loaded.cfg, loaded.norm_stats, loaded.tokenizer
        self.config = config
        self.path = loaded.path
        self.asset_id = loaded.asset_id
        self.params = jax.device_put(loaded.params)
        self._sample = model.jitted(self.cfg, "sample_actions", num_steps=config.num_steps)
        self._rng = jax.random.key(config.seed)
        self._lock = threading.Lock()
        self.num_calls = 0

    @classmethod
    def from_checkpoint(cls, ckpt_dir: str | os.PathLike, num_steps: int = 10, seed: int = 0, *, dtype=None,
                        tokenizer_path=None, cfg=None, config: PolicyConfig | None = None,
                        noise_scale: float = 1.0) -> "Policy":
        from robosteer_assets.vla.checkpoint import CONFIG_FILE, load_checkpoint, read_checkpoint_config

        config = config or PolicyConfig(num_steps=num_steps, seed=seed, noise_scale=noise_scale)
        if dtype is None:  # serve in the config's dtype (openpi restores everything as bf16 for serving)
            model_cfg = cfg or (read_checkpoint_config(ckpt_dir)["config"]
                                if (Path(ckpt_dir) / CONFIG_FILE).exists() else None)
            dtype = model_cfg.dtype if model_cfg is not None else None
        t0 = time.monotonic()
        loaded = load_checkpoint(ckpt_dir, cfg=cfg, dtype=dtype, tokenizer_path=tokenizer_path)
        log.info("loaded %s (%s) in %.1fs", ckpt_dir, loaded.cfg.name, time.monotonic() - t0)
        return cls(loaded, config)

    @property
    def metadata(self) -> dict:
        """msgpack-able description sent to clients (openpi sends its policy metadata first)."""
        return {"model": self.cfg.name, "pi05": bool(self.cfg.pi05), "action_horizon": int(self.cfg.action_horizon),
                "action_dim": DROID_ACTION_DIM, "model_action_dim": int(self.cfg.action_dim),
                "num_steps": int(self.config.num_steps), "asset_id": self.asset_id,
                "checkpoint": str(self.path) if self.path is not None else None}

    def _noise(self, noise):
        import jax

        shape = (1, self.cfg.action_horizon, self.cfg.action_dim)
        if noise is None:
            with self._lock:
                self._rng, sub = jax.random.split(self._rng)
            return jax.random.normal(sub, shape) * self.config.noise_scale
        n = np.asarray(noise, np.float32)
        if n.shape == shape[1:]:
            n = n[None]
        if n.shape != shape:
            raise PolicyInputError(f"noise: expected shape {shape[1:]} (T_a, action_dim), found {n.shape}")
        return n

    def infer(self, obs: dict, noise=None) -> dict:
        ext, wrist, state, prompt = parse_request(obs, self.config)
        t0 = time.monotonic()
        images = model_images(ext, wrist, self.cfg.vision.resolution)
        observation = make_observation(self.cfg, self.tokenizer, self.norm_stats, images, state[None], [prompt])
        x = self._sample(self.params, observation, self._noise(noise))
        actions = unnormalize_actions(self.cfg, self.norm_stats, np.asarray(x[0]))
        with self._lock:
            self.num_calls += 1
        return {"actions": actions, "policy_timing": {"infer_ms": (time.monotonic() - t0) * 1000.0}}

    def reset(self) -> None:
        """Nothing to reset between episodes (openpi's client reset is a no-op)."""

    def reseed(self, seed: int) -> None:
        """Restart the noise sequence at ``jax.random.key(seed)`` (the evaluator does this per trial,
        so a trial's actions do not depend on which trials ran before it in the same process)."""
        import jax

        with self._lock:
            self._rng = jax.random.key(int(seed))


@dataclass(frozen=True)
class SmokeTestConfig:
    """The check that a checkpoint is usable: it loads as a ``Policy`` and predicts one action chunk
    for a neutral DROID observation (mid-grey images, zero state)."""

    prompt: str = "pick up red cube"
    image_size: int = 224
    num_steps: int = 10  # Euler steps of the sampler (openpi: 10)


def run_smoke_test(cfg: SmokeTestConfig, logger, *, checkpoint: str, config_name: str = "",
                   tokenizer_path: str = "") -> dict:
    """dagster-pipes step ``smoke_test``: ``{"finite": all actions finite, "chunk_shape": [T, 8], "model",
    "parameters", "asset_id"}``. Loading validates the parameter tree, shapes and dtypes against the model
    config; ``config_name`` names that config for a checkpoint without ``robosteer_config.json`` (openpi's)."""
    from robosteer_assets.vla.checkpoint import CONFIG_FILE
    from robosteer_assets.vla.model import param_count

    kw = {}
    if config_name and not (Path(checkpoint) / CONFIG_FILE).exists():
        from robosteer_assets.vla.config import get_config

        kw["cfg"] = get_config(config_name)
    if tokenizer_path:
        kw["tokenizer_path"] = tokenizer_path
    policy = Policy.from_checkpoint(checkpoint, num_steps=cfg.num_steps, **kw)
    grey = np.full((cfg.image_size, cfg.image_size, 3), 128, np.uint8)
    actions = np.asarray(policy.infer({EXTERIOR_KEY: grey, WRIST_KEY: grey, JOINT_KEY: np.zeros(7),
                                       GRIPPER_KEY: np.zeros(1), PROMPT_KEY: cfg.prompt})["actions"])
    finite = bool(np.isfinite(actions).all())
    logger.info("smoke test of %s: chunk %s, finite: %s", checkpoint, list(actions.shape), finite)
    return {"finite": finite, "chunk_shape": list(actions.shape), "model": policy.cfg.name,
            "parameters": int(param_count(policy.params)), "asset_id": policy.asset_id}
