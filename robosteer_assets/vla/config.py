"""Model configs in openpi's variant vocabulary (openpi_facts.md §0).

A pi0 / pi0.5 config names a Gemma variant for the PaliGemma LLM ("expert 0"), a
Gemma variant for the action expert ("expert 1"), a SigLIP variant string
``"<size>/<patch>"``, the dtype, action_dim, action_horizon, max_token_len and
pi05 — with openpi's names and defaults. Our CPU presets are just named
combinations of these (plus our own small Gemma sizes under new names).

Tiny presets (``pi0_tiny`` / ``pi05_tiny``), sized from jax_cpu_sizing.md for a CPU:
112 x 112 images (``image_resolution``; openpi's is 224) through SigLIP ``mu/28``, a
1-block, 32-wide ViT giving 4 x 4 = 16 tokens per image (3 images = 48 tokens), plus
16 (pi0) / 48 (pi0.5) prompt tokens; the LLM keeps 8 query heads / 1 KV head (so
"head (l, h)" means the same thing as in the 18 x 8 PaliGemma) with 6 layers = 48
heads, widths 128 (LLM) / 64 (action expert), float32 (bf16 brings nothing on a CPU).
benchmarks/bench_model.py measures their forward and train-step times.
``pi0_micro`` / ``pi05_micro`` (224 px, SigLIP mu/56 = 16 tokens per image, 2 layers)
are for unit tests.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

PALIGEMMA_VOCAB_SIZE = 257_152
IMAGE_RESOLUTION = (224, 224)
IMAGE_KEYS = ("base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb")
LORA_TARGETS = frozenset({"q", "kv", "attn_vec", "ffn"})


@dataclass(frozen=True)
class LoRAConfig:
    """LoRA on an expert's einsums. ``targets`` ⊆ {"q", "kv", "attn_vec", "ffn"}.
    Scaling alpha/rank (alpha/sqrt(rank) with rslora) on the attention einsums; the
    FFN LoRA path is unscaled, as in openpi. ``init_b``: "normal" (openpi: both A and
    B ~ N(0, 0.01)) or "zeros" (standard LoRA: the adapted model starts equal to
    the base)."""

    rank: int
    alpha: float
    targets: frozenset[str] = frozenset({"q", "kv", "attn_vec", "ffn"})
    init_b: str = "normal"
    rslora: bool = False

    def __post_init__(self):
        object.__setattr__(self, "targets", frozenset(self.targets))
        bad = self.targets - LORA_TARGETS
        if bad or self.rank < 1 or self.init_b not in ("normal", "zeros"):
            raise ValueError(f"LoRAConfig: targets ⊆ {sorted(LORA_TARGETS)}, rank >= 1, init_b normal|zeros; "
                             f"found targets={sorted(self.targets)} rank={self.rank} init_b={self.init_b!r}")

    @property
    def scaling(self) -> float:
        return self.alpha / (self.rank ** 0.5 if self.rslora else self.rank)


@dataclass(frozen=True)
class GemmaVariant:
    width: int
    depth: int
    mlp_dim: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    lora: LoRAConfig | None = None


GEMMA_VARIANTS: dict[str, GemmaVariant] = {
    # openpi's names and values (openpi_facts §0)
    "dummy": GemmaVariant(64, 4, 128, 8, 1, 16),
    "gemma_300m": GemmaVariant(1024, 18, 4096, 8, 1, 256),
    "gemma_2b": GemmaVariant(2048, 18, 16384, 8, 1, 256),
    "gemma_2b_lora": GemmaVariant(2048, 18, 16384, 8, 1, 256, LoRAConfig(16, 16.0)),
    "gemma_300m_lora": GemmaVariant(1024, 18, 4096, 8, 1, 256, LoRAConfig(32, 32.0)),
    # our own CPU sizes (new names; 8 query heads / 1 KV head kept)
    "tiny_llm": GemmaVariant(128, 6, 512, 8, 1, 32),
    "tiny_expert": GemmaVariant(64, 6, 256, 8, 1, 32),
    "micro_llm": GemmaVariant(64, 2, 128, 8, 1, 16),
    "micro_expert": GemmaVariant(32, 2, 64, 8, 1, 16),
}

# ViT scaling table (Zhai et al. 2021, Table 2) as openpi decodes it: width, depth, mlp, heads
SIGLIP_SIZES: dict[str, tuple[int, int, int, int]] = {
    "mu": (32, 1, 128, 2),
    "Ti": (192, 12, 768, 3),
    "S": (384, 12, 1536, 6),
    "M": (512, 12, 2048, 8),
    "B": (768, 12, 3072, 12),
    "L": (1024, 24, 4096, 16),
    "So400m": (1152, 27, 4304, 16),
}


@dataclass(frozen=True)
class SiglipVariant:
    size: str
    patch: int
    width: int
    depth: int
    mlp_dim: int
    num_heads: int
    resolution: int = IMAGE_RESOLUTION[0]

    @property
    def num_patches(self) -> int:
        return (self.resolution // self.patch) ** 2

    @property
    def head_dim(self) -> int:
        return self.width // self.num_heads


def gemma_variant(name: str) -> GemmaVariant:
    try:
        return GEMMA_VARIANTS[name]
    except KeyError:
        raise ValueError(f"Gemma variant: expected one of {sorted(GEMMA_VARIANTS)}, found {name!r}") from None


def siglip_variant(spec: str, resolution: int = IMAGE_RESOLUTION[0]) -> SiglipVariant:
    """Decode ``"<size>/<patch>"`` (e.g. ``"So400m/14"``, ``"Ti/16"``) at ``resolution`` (openpi: 224)."""
    try:
        size, patch_s = spec.split("/")
        width, depth, mlp, heads = SIGLIP_SIZES[size]
        patch = int(patch_s)
    except (ValueError, KeyError):
        raise ValueError(f"SigLIP variant: expected '<size>/<patch>' with size in {sorted(SIGLIP_SIZES)}, "
                         f"found {spec!r}") from None
    if patch < 1 or resolution % patch:
        raise ValueError(f"SigLIP variant {spec!r}: patch must divide the image resolution {resolution}")
    return SiglipVariant(size, patch, width, depth, mlp, heads, resolution)


@dataclass(frozen=True)
class Pi0Config:
    """A pi0 / pi0.5 model, named in openpi's vocabulary (openpi_facts §0).

    ``lora`` / ``action_expert_lora`` override the LoRA spec of expert 0 / 1 (the
    ``_lora`` Gemma variants bring openpi's own). ``name`` is informational.
    """

    paligemma_variant: str = "gemma_2b"
    action_expert_variant: str = "gemma_300m"
    siglip_variant: str = "So400m/14"
    dtype: str = "bfloat16"
    action_dim: int = 32
    action_horizon: int = 50
    max_token_len: int | None = None  # 48 (pi0) / 200 (pi05) when None
    pi05: bool = False
    vocab_size: int = PALIGEMMA_VOCAB_SIZE
    lora: LoRAConfig | None = None
    action_expert_lora: LoRAConfig | None = None
    image_resolution: int = IMAGE_RESOLUTION[0]  # square model input (openpi: 224)
    name: str = "custom"

    def __post_init__(self):
        if self.max_token_len is None:
            object.__setattr__(self, "max_token_len", 200 if self.pi05 else 48)
        for f in ("action_dim", "action_horizon", "max_token_len", "vocab_size", "image_resolution"):
            v = getattr(self, f)
            if isinstance(v, bool) or not hasattr(v, "__index__") or v < 1:
                raise ValueError(f"Pi0Config.{f}: expected a positive int, found {v!r}")
            object.__setattr__(self, f, int(v))
        if self.dtype not in ("bfloat16", "float32"):
            raise ValueError(f"Pi0Config.dtype: expected 'bfloat16' or 'float32', found {self.dtype!r}")
        g0, g1 = self.llm, self.expert
        for attr in ("depth", "num_heads", "num_kv_heads", "head_dim"):
            if getattr(g0, attr) != getattr(g1, attr):
                raise ValueError(f"Pi0Config: both experts must share {attr} (one joint attention); found "
                                 f"{self.paligemma_variant}={getattr(g0, attr)} vs "
                                 f"{self.action_expert_variant}={getattr(g1, attr)}")
        if g0.num_heads % g0.num_kv_heads:
            raise ValueError("Pi0Config: num_heads must be a multiple of num_kv_heads")
        siglip_variant(self.siglip_variant, self.image_resolution)

    # resolved variants -------------------------------------------------------------------
    @property
    def llm(self) -> GemmaVariant:
        g = gemma_variant(self.paligemma_variant)
        return dataclasses.replace(g, lora=self.lora) if self.lora is not None else g

    @property
    def expert(self) -> GemmaVariant:
        g = gemma_variant(self.action_expert_variant)
        return dataclasses.replace(g, lora=self.action_expert_lora) if self.action_expert_lora is not None else g

    @property
    def vision(self) -> SiglipVariant:
        return siglip_variant(self.siglip_variant, self.image_resolution)

    @property
    def num_layers(self) -> int:
        return self.llm.depth

    @property
    def num_heads(self) -> int:
        return self.llm.num_heads

    @property
    def head_dim(self) -> int:
        return self.llm.head_dim

    @property
    def prefix_len(self) -> int:
        return len(IMAGE_KEYS) * self.vision.num_patches + self.max_token_len

    @property
    def suffix_len(self) -> int:
        return self.action_horizon + (0 if self.pi05 else 1)

    def replace(self, **kw) -> "Pi0Config":
        return dataclasses.replace(self, **kw)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for k in ("lora", "action_expert_lora"):
            if d[k] is not None:
                d[k]["targets"] = sorted(d[k]["targets"])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Pi0Config":
        d = dict(d)
        for k in ("lora", "action_expert_lora"):
            if d.get(k) is not None:
                d[k] = LoRAConfig(**{**d[k], "targets": frozenset(d[k]["targets"])})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"Pi0Config: unknown fields {unknown}")
        return cls(**d)


_PRESETS: dict[str, dict] = {
    "pi0": dict(),
    "pi05": dict(pi05=True),
    "pi0_droid": dict(action_horizon=10),
    "pi05_droid": dict(pi05=True, action_horizon=15),
    "pi0_lora": dict(paligemma_variant="gemma_2b_lora", action_expert_variant="gemma_300m_lora"),
    "pi05_lora": dict(pi05=True, paligemma_variant="gemma_2b_lora", action_expert_variant="gemma_300m_lora"),
    "pi0_dummy": dict(paligemma_variant="dummy", action_expert_variant="dummy"),
    "pi05_dummy": dict(pi05=True, paligemma_variant="dummy", action_expert_variant="dummy"),
    # CPU presets: same code, small sizes, float32
    "pi0_tiny": dict(paligemma_variant="tiny_llm", action_expert_variant="tiny_expert", siglip_variant="mu/28",
                     image_resolution=112, dtype="float32", action_horizon=10, max_token_len=16, vocab_size=512),
    "pi05_tiny": dict(pi05=True, paligemma_variant="tiny_llm", action_expert_variant="tiny_expert",
                      siglip_variant="mu/28", image_resolution=112, dtype="float32", action_horizon=10,
                      max_token_len=48, vocab_size=512),
    "pi0_micro": dict(paligemma_variant="micro_llm", action_expert_variant="micro_expert", siglip_variant="mu/56",
                      dtype="float32", action_dim=8, action_horizon=4, max_token_len=8, vocab_size=64),
    "pi05_micro": dict(pi05=True, paligemma_variant="micro_llm", action_expert_variant="micro_expert",
                       siglip_variant="mu/56", dtype="float32", action_dim=8, action_horizon=4, max_token_len=48,
                       vocab_size=64),
}

CONFIG_NAMES = tuple(_PRESETS)


def get_config(name: str, **overrides) -> Pi0Config:
    """A named preset (``pi0``, ``pi05``, ``pi0_droid``, ``pi05_droid``, ``pi0_lora``, ``pi0_dummy``,
    ``pi0_tiny``, ``pi05_tiny``, ``pi0_micro`` ...) with optional field overrides."""
    if name not in _PRESETS:
        import difflib

        close = difflib.get_close_matches(name, _PRESETS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"model config: expected one of {sorted(_PRESETS)}, found {name!r}{hint}")
    return Pi0Config(**{**_PRESETS[name], "name": name, **overrides})


__all__ = [
    "CONFIG_NAMES", "GEMMA_VARIANTS", "IMAGE_KEYS", "IMAGE_RESOLUTION", "LoRAConfig", "PALIGEMMA_VOCAB_SIZE",
    "Pi0Config", "SIGLIP_SIZES", "get_config", "gemma_variant", "siglip_variant",
]
