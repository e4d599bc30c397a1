"""``robosteer model info CONFIG [--set key=value ...]``: a config's fields and its parameter groups.

Counts come from ``vla.model.param_shapes`` (shapes only: nothing is allocated), so the real
``pi0`` (3.24 B parameters) prints in seconds. CONFIG is a preset name (``pi0``, ``pi05_tiny`` ...) or
a checkpoint directory holding ``robosteer_config.json``.
"""

from __future__ import annotations

import argparse
import json

# (group label, predicate on the '/'-joined path); first match wins, LoRA first
PARAM_GROUPS = (
    ("LoRA", lambda p: "lora" in p),
    ("SigLIP encoder", lambda p: p.startswith("PaliGemma/img/") and not p.startswith("PaliGemma/img/head/")),
    ("SigLIP head", lambda p: p.startswith("PaliGemma/img/head/")),
    ("embedder", lambda p: p.startswith("PaliGemma/llm/embedder/")),
    ("action expert", lambda p: p.startswith("PaliGemma/llm/") and any(c.endswith("_1") for c in p.split("/")[2:])),
    ("LLM layers (expert 0)", lambda p: p.startswith("PaliGemma/llm/")),
    ("projections", lambda p: not p.startswith("PaliGemma/")),
)
GROUP_ORDER = ("SigLIP encoder", "SigLIP head", "embedder", "LLM layers (expert 0)", "action expert",
               "projections", "LoRA")


def parse_overrides(items: list[str] | None) -> dict:
    """``["key=value", ...]`` → dict; values parsed as JSON (numbers, true/false, null, objects), else str."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--set: expected key=value, found {item!r}")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            out[k.strip()] = v
    return out


def resolve_config(name: str, overrides: dict | None = None):
    """A preset name or checkpoint directory, with field overrides applied."""
    from pathlib import Path

    from robosteer_assets.vla.config import Pi0Config, get_config

    if Path(name).is_dir():
        from robosteer_assets.vla.checkpoint import read_checkpoint_config

        cfg = read_checkpoint_config(name)["config"]
    else:
        cfg = get_config(name)
    if overrides:
        d = cfg.to_dict()
        unknown = sorted(set(overrides) - set(d))
        if unknown:
            raise ValueError(f"--set: unknown Pi0Config fields {unknown}; expected some of {sorted(d)}")
        from robosteer_assets.vla.config import LORA_TARGETS

        for k in ("lora", "action_expert_lora"):  # e.g. --set 'lora={"rank": 4, "alpha": 4}'
            v = overrides.get(k)
            if isinstance(v, dict):
                overrides[k] = {"targets": sorted(LORA_TARGETS), **v}
            elif k in overrides and v is not None:
                raise ValueError(f"--set {k}: expected a JSON object like {{\"rank\": 16, \"alpha\": 16}} or null, "
                                 f"found {v!r}")
        try:
            cfg = Pi0Config.from_dict({**d, **overrides})
        except TypeError as e:
            raise ValueError(f"--set: {e}") from None
    return cfg


def param_groups(cfg) -> dict[str, dict]:
    """``{group: {"params": int, "arrays": int}}`` plus ``total``, from the shape tree."""
    import numpy as np

    from robosteer_assets.vla.checkpoint import flatten
    from robosteer_assets.vla.model import param_shapes

    groups = {g: {"params": 0, "arrays": 0} for g in GROUP_ORDER}
    for path, leaf in flatten(param_shapes(cfg)).items():
        label = next(g for g, pred in PARAM_GROUPS if pred(path))
        groups[label]["params"] += int(np.prod(leaf.shape))
        groups[label]["arrays"] += 1
    groups["total"] = {"params": sum(v["params"] for v in groups.values()),
                       "arrays": sum(v["arrays"] for v in groups.values())}
    return groups


def format_info(cfg) -> str:
    lines = [f"config {cfg.name}"]
    for k, v in cfg.to_dict().items():
        lines.append(f"  {k:<24} {v}")
    g0, g1, vis = cfg.llm, cfg.expert, cfg.vision
    lines.append(f"  {'(llm)':<24} width {g0.width}, depth {g0.depth}, mlp {g0.mlp_dim}, heads {g0.num_heads}, "
                 f"kv heads {g0.num_kv_heads}, head_dim {g0.head_dim}")
    lines.append(f"  {'(action expert)':<24} width {g1.width}, mlp {g1.mlp_dim}")
    lines.append(f"  {'(vision)':<24} width {vis.width}, depth {vis.depth}, mlp {vis.mlp_dim}, heads {vis.num_heads}, "
                 f"patch {vis.patch}, {vis.num_patches} tokens/image")
    lines.append(f"  {'(sequence)':<24} prefix {cfg.prefix_len}, suffix {cfg.suffix_len}; "
                 f"{cfg.num_layers} x {cfg.num_heads} = {cfg.num_layers * cfg.num_heads} heads")
    bytes_per = 2 if cfg.dtype == "bfloat16" else 4
    lines.append("")
    lines.append(f"  {'parameter group':<24} {'params':>15} {'arrays':>7} {'MiB (' + cfg.dtype + ')':>18}")
    for name, v in param_groups(cfg).items():
        if name == "total":
            lines.append("  " + "-" * 66)
        lines.append(f"  {name:<24} {v['params']:>15,} {v['arrays']:>7} {v['params'] * bytes_per / 2**20:>18,.1f}")
    return "\n".join(lines)


def _info(args) -> int:
    try:
        cfg = resolve_config(args.config, parse_overrides(args.set))
    except ValueError as e:
        print(f"error: {e}")
        return 2
    print(format_info(cfg))
    return 0


def register(subparsers) -> None:
    model = subparsers.add_parser("model", help="model configs and checkpoints")
    sub = model.add_subparsers(dest="model_command", required=True)
    info = sub.add_parser("info", help="print a config's fields and parameter counts (nothing allocated)",
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    info.add_argument("config", help="preset name (pi0, pi05, pi0_tiny, ...) or a checkpoint directory")
    info.add_argument("--set", action="append", metavar="KEY=VALUE",
                      help="override a Pi0Config field, e.g. --set paligemma_variant=dummy --set siglip_variant=Ti/16")
    info.set_defaults(handler=_info)
