"""Model checkpoints in openpi's layout (openpi_facts.md §2.1-2.3).

A checkpoint directory::

    <dir>/params/                          orbax PyTree checkpoint of {"params": <param tree>}
    <dir>/assets/<asset_id>/norm_stats.json   openpi's norm stats file
    <dir>/assets/tokenizer.model           (tiny configs) the SentencePiece model trained for them
    <dir>/robosteer_config.json            our Pi0Config + asset id + tokenizer path, so the directory
                                           alone is servable

openpi's released checkpoints (``params/`` + ``assets/``) load through :func:`restore_params` /
:func:`load_params`; they have no ``robosteer_config.json``, so :func:`load_checkpoint` then needs the
config passed in (``cfg=get_config("pi0_droid")``) and the PaliGemma tokenizer path.

Parameter trees are pure nested dicts with openpi's paths (``vla.model``). Restoring reads the orbax
metadata and restores every leaf as numpy (stored sharding ignored, optional dtype cast during the
restore); trees saved by openpi *training* wrap every leaf in a trailing ``value`` key, which is
stripped when all paths end in it. :func:`load_params` validates structure, shapes and dtypes against
``vla.model.param_shapes(cfg)`` and raises :class:`CheckpointMismatchError` listing missing paths,
unexpected paths and shape / dtype mismatches path by path. :func:`merge_params` is openpi's weight-loader
merge (loaded values where present, cast to the reference dtype; fresh reference values for missing
paths matching ``missing_regex``, e.g. ``.*lora.*``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robosteer_assets.common.atomic import atomic_dir, write_text_atomic
from robosteer_assets.common.progress import get_logger
from robosteer_assets.vla.normalize import NORM_STATS_FILE, NormStats, load_norm_stats, norm_stats_to_json

log = get_logger("vla.checkpoint")

PARAMS_DIR = "params"
ASSETS_DIR = "assets"
CONFIG_FILE = "robosteer_config.json"
TOKENIZER_ASSET = "tokenizer.model"
FORMAT_VERSION = 1
TOKENIZER_ENV = "ROBOSTEER_TOKENIZER"  # path of the PaliGemma tokenizer for real configs


class CheckpointError(ValueError):
    """A checkpoint directory that cannot be read or written as expected."""


class CheckpointMismatchError(CheckpointError):
    """The stored parameter tree does not match the model config; the message lists the differences."""

    def __init__(self, source: str, missing: list[str], unexpected: list[str], shape: list[tuple],
                 dtype: list[tuple], limit: int = 40):
        self.source, self.missing, self.unexpected = source, missing, unexpected
        self.shape_mismatches, self.dtype_mismatches = shape, dtype
        lines = [f"{source}: parameter tree does not match the model config "
                 f"({len(missing)} missing, {len(unexpected)} unexpected, {len(shape)} shape and "
                 f"{len(dtype)} dtype mismatches)"]

        def section(title, rows):
            if rows:
                lines.append(f"  {title}:")
                lines.extend(f"    {r}" for r in rows[:limit])
                if len(rows) > limit:
                    lines.append(f"    ... and {len(rows) - limit} more")

        section("missing paths (expected by the config, not in the checkpoint)", missing)
        section("unexpected paths (in the checkpoint, not in the config)", unexpected)
        section("shape mismatches (path: checkpoint vs expected)", [f"{p}: {a} vs {b}" for p, a, b in shape])
        section("dtype mismatches (path: checkpoint vs expected)", [f"{p}: {a} vs {b}" for p, a, b in dtype])
        super().__init__("\n".join(lines))


# ----------------------------------------------------------------------------- tree helpers

# '/'-joined paths, the same helpers the model uses
from robosteer_assets.vla.model import flatten, unflatten  # noqa: E402,F401


def strip_value_suffix(flat: dict[str, Any]) -> dict[str, Any]:
    """Drop a trailing ``/value`` when *every* path ends in it (openpi training checkpoints)."""
    if flat and all(k.endswith("/value") for k in flat):
        return {k[: -len("/value")]: v for k, v in flat.items()}
    return flat


def _np_dtype(dtype):
    if dtype is None:
        return None
    if isinstance(dtype, str) and dtype in ("bfloat16", "bf16"):
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(dtype)


def _to_numpy(x) -> np.ndarray:
    return np.asarray(x)


# ----------------------------------------------------------------------------- restore

def _params_dir(path: str | os.PathLike) -> Path:
    p = Path(path)
    if (p / PARAMS_DIR).is_dir() and not (p / "_METADATA").exists():
        return p / PARAMS_DIR
    return p


def restore_params(params_dir: str | os.PathLike, dtype=None) -> dict:
    """Restore the ``params`` item of an orbax PyTree checkpoint as a nested dict of numpy arrays.

    ``params_dir`` is ``<checkpoint>/params`` (a checkpoint directory is accepted too). The tree may
    be ``{"params": tree}`` (openpi) or the bare tree; a trailing ``value`` on every path is stripped;
    stored sharding is ignored; ``dtype`` (e.g. ``"bfloat16"``) casts every leaf during the restore.
    """
    import jax
    import orbax.checkpoint as ocp

    path = _params_dir(params_dir).resolve()
    if not path.is_dir():
        raise CheckpointError(f"{path}: parameter checkpoint directory not found")
    ckptr = ocp.PyTreeCheckpointer()
    try:
        meta = ckptr.metadata(path)
    except (FileNotFoundError, ValueError, OSError) as e:
        raise CheckpointError(f"{path}: not an orbax PyTree checkpoint ({type(e).__name__}: {e})") from None
    item = getattr(meta, "item_metadata", meta)
    tree = getattr(item, "tree", item)
    if tree is None:
        raise CheckpointError(f"{path}: no readable orbax metadata (missing or corrupt _METADATA / manifest.ocdbt / "
                              f"data files); expected an orbax PyTree checkpoint of {{'params': tree}}")
    if not isinstance(tree, dict):
        raise CheckpointError(f"{path}: expected a dict tree in the orbax metadata, found {type(tree).__name__}")
    if "params" in tree:
        target, partial = {"params": tree["params"]}, len(tree) > 1
    else:
        target, partial = tree, False
    np_dtype = _np_dtype(dtype)
    restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray, dtype=np_dtype), target)
    try:
        restored = ckptr.restore(path, args=ocp.args.PyTreeRestore(item=target, restore_args=restore_args,
                                                                   partial_restore=partial))
    except (ValueError, FileNotFoundError, OSError) as e:
        raise CheckpointError(f"{path}: orbax restore failed ({type(e).__name__}: {e})") from None
    if "params" in tree:
        restored = restored["params"]
    flat = strip_value_suffix(flatten(restored))
    return unflatten({k: _to_numpy(v) for k, v in flat.items()})


def diff_trees(loaded_flat: dict[str, Any], ref_flat: dict[str, Any], allowed_dtypes=None):
    """(missing, unexpected, shape mismatches, dtype mismatches) of two flat trees.

    ``allowed_dtypes``: extra dtypes accepted besides the reference's (e.g. bfloat16 for a bf16 config).
    """
    missing = sorted(set(ref_flat) - set(loaded_flat))
    unexpected = sorted(set(loaded_flat) - set(ref_flat))
    shape, dtype = [], []
    allowed = {np.dtype(d) for d in (allowed_dtypes or ())}
    for k in sorted(set(ref_flat) & set(loaded_flat)):
        a, r = loaded_flat[k], ref_flat[k]
        if tuple(a.shape) != tuple(r.shape):
            shape.append((k, tuple(a.shape), tuple(r.shape)))
        elif np.dtype(a.dtype) != np.dtype(r.dtype) and np.dtype(a.dtype) not in allowed:
            dtype.append((k, str(np.dtype(a.dtype)), str(np.dtype(r.dtype))))
    return missing, unexpected, shape, dtype


def validate_params(params: dict, cfg, source: str = "params", dtype=None, *, check_dtypes: bool = True) -> None:
    """Raise :class:`CheckpointMismatchError` unless ``params`` has exactly the tree of
    ``vla.model.param_shapes(cfg)`` (paths, shapes; dtypes = the reference's, ``cfg.dtype`` or ``dtype``,
    unless ``check_dtypes`` is False). The one tree check of loaded checkpoints and of trees handed
    to the NNX module (``vla.nnx_model.Pi0``)."""
    from robosteer_assets.vla.model import param_shapes

    ref = flatten(param_shapes(cfg))
    allowed = [_np_dtype(cfg.dtype)] + ([_np_dtype(dtype)] if dtype is not None else [])
    missing, unexpected, shape, dt = diff_trees(flatten(params), ref, allowed)
    dt = dt if check_dtypes else []
    if missing or unexpected or shape or dt:
        raise CheckpointMismatchError(source, missing, unexpected, shape, dt)


def load_params(ckpt_dir: str | os.PathLike, cfg, dtype=None) -> dict:
    """Restore ``<ckpt_dir>/params`` and validate it against ``cfg`` (see :func:`validate_params`).
    ``dtype`` casts every leaf (e.g. ``"bfloat16"`` for serving, as openpi)."""
    pdir = _params_dir(ckpt_dir)
    params = restore_params(pdir, dtype=dtype)
    validate_params(params, cfg, source=str(pdir), dtype=dtype)
    return params


def merge_params(loaded: dict, reference: dict, missing_regex: str = ".*lora.*") -> dict:
    """openpi's weight-loader merge. ``reference``: a freshly initialised tree (arrays) of the target
    config. Every reference path found in ``loaded`` takes the loaded value cast to the reference dtype
    (shapes must match); reference paths missing from ``loaded`` that fully match ``missing_regex`` keep
    the reference value; any other missing path is an error; unknown loaded paths are dropped (logged)."""
    lf, rf = flatten(loaded), flatten(reference)
    pat = re.compile(missing_regex)
    out, missing, shape = {}, [], []
    for k, r in rf.items():
        if k in lf:
            a = lf[k]
            if tuple(a.shape) != tuple(r.shape):
                shape.append((k, tuple(a.shape), tuple(r.shape)))
                continue
            out[k] = np.asarray(a).astype(r.dtype, copy=False)
        elif pat.fullmatch(k):
            if not hasattr(r, "__array__"):
                raise CheckpointError(f"merge_params: {k} is missing from the loaded tree and the reference has no "
                                      f"value for it (a shape-only leaf); pass an initialised reference tree")
            out[k] = r
        else:
            missing.append(k)
    if missing or shape:
        raise CheckpointMismatchError("merge_params", missing, [], shape, [])
    dropped = sorted(set(lf) - set(rf))
    if dropped:
        log.info("merge_params: dropped %d loaded paths unknown to the reference (e.g. %s)", len(dropped), dropped[0])
    return unflatten(out)


# ----------------------------------------------------------------------------- save

def _write_params(path: Path, params: dict) -> None:
    """Write the orbax item ``{"params": params}`` to ``path`` (must not exist)."""
    import orbax.checkpoint as ocp

    tree = {"params": unflatten({k: _to_numpy(v) for k, v in flatten(params).items()})}
    ocp.PyTreeCheckpointer().save(path.resolve(), args=ocp.args.PyTreeSave(tree))


def _looks_like_checkpoint(p: Path) -> bool:
    return (p / CONFIG_FILE).exists() or (p / PARAMS_DIR).is_dir()


def save_checkpoint(ckpt_dir: str | os.PathLike, cfg, params: dict, norm_stats: dict[str, NormStats],
                    asset_id: str = "droid", tokenizer_path: str | os.PathLike | None = None,
                    extra: dict | None = None, validate: bool = True) -> Path:
    """Write a complete checkpoint atomically (temp sibling + rename): if anything fails, an existing
    checkpoint at ``ckpt_dir`` stays intact and nothing half-written is left. ``extra`` (JSON-able) is
    stored in ``robosteer_config.json``. Refuses to replace a non-empty directory that is not a
    checkpoint."""
    ckpt_dir = Path(ckpt_dir)
    if ckpt_dir.exists() and any(ckpt_dir.iterdir()) and not _looks_like_checkpoint(ckpt_dir):
        raise CheckpointError(f"{ckpt_dir}: exists and is not a checkpoint directory (no {CONFIG_FILE} or "
                              f"{PARAMS_DIR}/); refusing to replace it")
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", asset_id) or asset_id in (".", ".."):
        raise CheckpointError(f"asset_id: expected a plain name ([A-Za-z0-9_.-]), found {asset_id!r}")
    if not isinstance(norm_stats, dict) or not all(isinstance(v, NormStats) for v in norm_stats.values()):
        raise CheckpointError("norm_stats: expected a dict of NormStats (keys 'state', 'actions')")
    if validate:
        validate_params(params, cfg, source="save_checkpoint(params)")
    if tokenizer_path is not None and not Path(tokenizer_path).is_file():
        raise CheckpointError(f"{tokenizer_path}: tokenizer model file not found")
    meta = {"format_version": FORMAT_VERSION, "name": cfg.name, "config": cfg.to_dict(), "asset_id": asset_id,
            "tokenizer": f"{ASSETS_DIR}/{TOKENIZER_ASSET}" if tokenizer_path is not None else None,
            "extra": extra or {}}
    try:
        meta_text = json.dumps(meta, indent=2, sort_keys=False)
    except TypeError as e:
        raise CheckpointError(f"save_checkpoint: extra must be JSON-serialisable ({e})") from None
    with atomic_dir(ckpt_dir) as tmp:
        _write_params(tmp / PARAMS_DIR, params)
        assets = tmp / ASSETS_DIR / asset_id
        assets.mkdir(parents=True)
        write_text_atomic(assets / NORM_STATS_FILE, norm_stats_to_json(norm_stats))
        if tokenizer_path is not None:
            shutil.copyfile(tokenizer_path, tmp / ASSETS_DIR / TOKENIZER_ASSET)
        write_text_atomic(tmp / CONFIG_FILE, meta_text)
    log.info("saved checkpoint %s (%s, asset %s)", ckpt_dir, cfg.name, asset_id)
    return ckpt_dir


# ----------------------------------------------------------------------------- load everything

@dataclass
class LoadedCheckpoint:
    cfg: Any
    params: dict
    norm_stats: dict[str, NormStats]
    tokenizer: Any
    asset_id: str = "droid"
    path: Path | None = None
    extra: dict = field(default_factory=dict)

    def __iter__(self):  # (cfg, params, norm_stats, tokenizer) unpacking, as documented
        return iter((self.cfg, self.params, self.norm_stats, self.tokenizer))


def read_checkpoint_config(ckpt_dir: str | os.PathLike) -> dict:
    """The parsed ``robosteer_config.json`` (``config`` field turned into a ``Pi0Config``)."""
    from robosteer_assets.vla.config import Pi0Config

    path = Path(ckpt_dir) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: not found (a robosteer checkpoint has it; for an openpi checkpoint pass "
                              f"cfg= explicitly)")
    try:
        meta = json.loads(path.read_text())
        meta["config"] = Pi0Config.from_dict(meta["config"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: expected JSON with a 'config' object of Pi0Config fields ({e})") from None
    return meta


def load_checkpoint(ckpt_dir: str | os.PathLike, cfg=None, dtype=None, asset_id: str | None = None,
                    tokenizer_path: str | os.PathLike | None = None) -> LoadedCheckpoint:
    """Load config, validated params, norm stats and tokenizer of a checkpoint directory.

    The tokenizer is the checkpoint's own ``assets/tokenizer.model`` if present, else ``tokenizer_path``,
    else ``$ROBOSTEER_TOKENIZER`` (the PaliGemma tokenizer for real configs)."""
    from robosteer_assets.vla.tokenizer import PromptTokenizer

    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        raise CheckpointError(f"{ckpt_dir}: checkpoint directory not found")
    meta = read_checkpoint_config(ckpt_dir) if (ckpt_dir / CONFIG_FILE).exists() else {}
    if cfg is None:
        if not meta:
            raise CheckpointError(f"{ckpt_dir}: no {CONFIG_FILE}; pass cfg= (e.g. get_config('pi0_droid'))")
        cfg = meta["config"]
    asset_id = asset_id or meta.get("asset_id")
    if asset_id is None:
        found = sorted(p.parent.name for p in (ckpt_dir / ASSETS_DIR).glob(f"*/{NORM_STATS_FILE}"))
        if len(found) != 1:
            raise CheckpointError(f"{ckpt_dir}/{ASSETS_DIR}: expected exactly one <asset_id>/{NORM_STATS_FILE} or "
                                  f"asset_id=, found {found}")
        asset_id = found[0]
    norm_stats = load_norm_stats(ckpt_dir / ASSETS_DIR / asset_id / NORM_STATS_FILE)
    for key in ("state", "actions"):
        if key not in norm_stats:
            raise CheckpointError(f"{ckpt_dir}/{ASSETS_DIR}/{asset_id}/{NORM_STATS_FILE}: expected key {key!r}, "
                                  f"found {sorted(norm_stats)}")
    own_tok = ckpt_dir / ASSETS_DIR / TOKENIZER_ASSET
    tok_path = own_tok if own_tok.is_file() else (tokenizer_path or os.environ.get(TOKENIZER_ENV))
    if tok_path is None:
        raise CheckpointError(f"{ckpt_dir}: no {ASSETS_DIR}/{TOKENIZER_ASSET}; pass tokenizer_path= or set "
                              f"${TOKENIZER_ENV} to the PaliGemma tokenizer model file")
    tokenizer = PromptTokenizer.for_model(cfg, tok_path)
    params = load_params(ckpt_dir, cfg, dtype=dtype)
    return LoadedCheckpoint(cfg=cfg, params=params, norm_stats=norm_stats, tokenizer=tokenizer, asset_id=asset_id,
                            path=ckpt_dir, extra=meta.get("extra", {}))


def checkpoint_fingerprint(ckpt_dir: str | os.PathLike, length: int = 12) -> str:
    """A short content id of a checkpoint directory (trial rows name the checkpoint they evaluated).

    sha1 over every file's relative path and size, plus the bytes of every file up to 4 MiB and the
    first and last MiB of larger ones (a 6 GB pi0 checkpoint is fingerprinted without reading it all;
    orbax's array files change in both ends when the weights change)."""
    import hashlib

    root = Path(ckpt_dir)
    if not root.is_dir():
        raise CheckpointError(f"{root}: checkpoint directory not found")
    h = hashlib.sha1()
    for p in sorted(q for q in root.rglob("*") if q.is_file()):
        size = p.stat().st_size
        h.update(f"{p.relative_to(root).as_posix()}\0{size}\0".encode())
        with open(p, "rb") as f:
            if size <= 4 << 20:
                h.update(f.read())
            else:
                h.update(f.read(1 << 20))
                f.seek(size - (1 << 20))
                h.update(f.read())
    return h.hexdigest()[:length]
