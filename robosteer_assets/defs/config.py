"""Typed run configuration for every tunable, with the paper's defaults.

Each stage's configuration is one frozen dataclass in its domain module; the
run config below is generated from it (``defs.specs.spec_config``: same fields,
defaults and descriptions) and ``config.to_spec(...)`` gives the dataclass back.
Defaults are the paper's (Mitra et al. 2025: 20 demos, 6 Hz, 224x224, first
suffix token, cosine k-NN over k in {10,20,30,40}, m = 20, LoRA rank 8, 5000
steps, batch 32, warmup-cosine 200 / 2.5e-5 / 5000 / 2.5e-6, 40-cell grid). The
embedded default overrides a few for CPU (see robosteer_assets/pipeline_cli.py).
"""

from __future__ import annotations

from robosteer_assets.defs.specs import spec_config
from robosteer_assets.droid.keyframes import KeyframeConfig
from robosteer_assets.droid.store import IngestConfig as IngestSpec
from robosteer_assets.evaluation.evaluator import SimEvalConfig
from robosteer_assets.sim.demos import SimDemosConfig as SimDemosSpec
from robosteer_assets.steering.activations import ActivationsConfig as ActivationsSpec
from robosteer_assets.steering.knn import KnnConfig
from robosteer_assets.steering.overlap import OverlapConfig as OverlapSpec
from robosteer_assets.embedded.base_policy import BasePolicyConfig as BasePolicySpec
from robosteer_assets.steering.selection import SelectionConfig as SelectionSpec
from robosteer_assets.training.trainer import TrainConfig

IngestConfig = spec_config(IngestSpec)
KeyframesConfig = spec_config(KeyframeConfig, name="KeyframesConfig")
ActivationsConfig = spec_config(ActivationsSpec)
HeadScoresConfig = spec_config(KnnConfig, name="HeadScoresConfig")
# the k-NN regression of selection is the one head_scores recorded with the scores
SelectionConfig = spec_config(SelectionSpec, resolved=("knn",))
OverlapConfig = spec_config(OverlapSpec)
# trial videos go under the data root
EvalConfig = spec_config(SimEvalConfig, resolved=("video_dir",), name="EvalConfig")
SimDemosConfig = spec_config(SimDemosSpec)


# the asset fills method (steering / full_lora) and the training-state location
FinetuneConfig = spec_config(TrainConfig, resolved=("method", "train_state_dir", "object_aux_weight"),
                             name="FinetuneConfig")
# the embedded default's base policy (ignored when resources.base_model.checkpoint_dir is set)
BasePolicyConfig = spec_config(BasePolicySpec, name="BasePolicyConfig")
