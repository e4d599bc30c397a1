"""The shipped base policy's model card: what produced the checkpoint (command, corpus
recipe and size, steps, wall time), its loss curve and its measured zero-shot success
per target task. Written next to the checkpoint as ``MODEL_CARD.md`` + ``card.json``."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

CARD_JSON = "card.json"
CARD_MD = "MODEL_CARD.md"


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a success rate."""
    if n <= 0:
        return (float("nan"), float("nan"))
    p = successes / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def write_card(ckpt_dir: str | os.PathLike, card: dict) -> Path:
    """Write ``card.json`` and a readable ``MODEL_CARD.md`` into ``ckpt_dir``. ``card`` holds
    ``command``, ``corpus`` (recipe dict), ``episodes``, ``steps_of_data``, ``train`` (config dict),
    ``steps``, ``wall_s``, ``final_loss``, ``loss_every`` (list of [step, loss]) and ``zero_shot``
    ({task: {"successes": s, "trials": n}}), each optional."""
    from robosteer_assets.common.atomic import write_text_atomic

    ckpt_dir = Path(ckpt_dir)
    write_text_atomic(ckpt_dir / CARD_JSON, json.dumps(card, indent=1, sort_keys=True))
    lines = ["# Embedded base policy (pi0_tiny, simulated corpus)", ""]
    if card.get("command"):
        lines += ["Built with:", "", "```bash", card["command"], "```", ""]
    c, t = card.get("corpus") or {}, card.get("train") or {}
    sections = {
        "Corpus": c and [
            f"{card.get('episodes', '?')} successful scripted demonstrations, {card.get('steps_of_data', '?')} 6 Hz "
            f"steps, {len(card.get('settings', []))} settings (task x object colours)",
            f"held out (never in the corpus): the paper settings of {', '.join(c.get('held_out_tasks', []))}",
            f"variations: {', '.join(c.get('variations', []))}; command noise {c.get('action_noise')} (AR(1), "
            f"normalised units), start-pose noise {c.get('home_noise')} rad"],
        "Training": t and [
            f"{card.get('steps', t.get('steps'))} steps, batch {t.get('batch_size')}, AdamW, warmup-cosine peak lr "
            f"{t.get('schedule', {}).get('peak_lr')}, augmentation {t.get('augment')}, object-position objective "
            f"weight {t.get('object_aux_weight', 0.0)} (a training-only probe, not in the checkpoint)"
            + (f", the first {t['start_frames']} steps of each episode {t.get('start_repeats')}x per epoch"
               if t.get("start_frames") else ""),
            f"wall time {card.get('wall_s', float('nan')) / 60:.1f} min on {card.get('machine', 'this machine')}",
            f"final loss {card.get('final_loss', float('nan')):.4f}"],
    }
    for title, bullets in sections.items():
        if bullets:
            lines += [f"## {title}", "", *(f"- {b}" for b in bullets), ""]
    curve = card.get("loss_every") or []
    if curve:
        lines += ["Loss curve (`loss_curve.png` in this folder):", "", "| step | loss |", "|---|---|"]
        lines += [f"| {s} | {l:.4f} |" for s, l in curve]
        lines.append("")
    zs = card.get("zero_shot") or {}
    if zs:
        lines += [f"## Zero-shot success (40-cell grid, eval seed 0, flow noise scale "
                  f"{card.get('eval_noise_scale', 1.0)})", "", "| task | successes / trials | 95 % Wilson |",
                  "|---|---|---|"]
        for task, r in sorted(zs.items()):
            lo, hi = wilson(r["successes"], r["trials"])
            lines.append(f"| {task} | {r['successes']}/{r['trials']} | {lo:.2f}-{hi:.2f} |")
        lines.append("")
    write_text_atomic(ckpt_dir / CARD_MD, "\n".join(lines))
    return ckpt_dir / CARD_MD
