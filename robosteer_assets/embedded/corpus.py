"""The base policy's pretraining corpus: broad simulated experience that knows the
robot, the cameras and the scenes, but not the target settings.

Stand-in for pi0-DROID's pretraining data. The corpus is a procedurally varied
family of tabletop tasks: every simulated task whose instruction names object
colours (pick up / press / place in / push to) in every combination of the colour
palette (``sim.tasks.COLORS``: "pick up blue cube", "press yellow button hard",
"place red cube in green bowl" ...), plus the fixed-colour tasks, in all visual
variations (plain, lighting, form, distractors) and at placements drawn over the
whole grid rectangle. The paper's own settings of the held-out tasks ("pick up red
cube", "place green cube in red bowl", "press red button hard") are left out, so
the base policy has the skills (reach, grasp, lift, place, press, push) and the
scenes, but never the target instruction with the target object. Zero-shot success
on a target is then what transfers from the neighbouring settings, and the
target's 20 demos specialise it, as in the paper's Table 1.

Demonstrations are recorded with noise injected into the executed commands and
from perturbed start poses (``sim.recorder.RecordConfig``), so the policy learns
from states off the expert's path and has to read the object's position from the
images rather than from the joint state.

Seeds are disjoint from the target demos' seeds (``seed_offset``), so no corpus
episode duplicates a target demonstration.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path

from robosteer_assets.common.progress import get_logger

log = get_logger("embedded.corpus")

PAPER_TARGETS = ("pick_cube", "cube_in_bowl", "press_button")


@dataclass(frozen=True)
class CorpusSetting:
    """One corpus setting: a simulated task with object colours, recorded into ``folder``."""

    task: str
    colors: tuple[tuple[str, str], ...] = ()

    @property
    def folder(self) -> str:
        return "-".join([self.task, *(c for _, c in self.colors)]) if self.colors else self.task

    @property
    def instruction(self) -> str:
        from robosteer_assets.sim.tasks import get_task

        return get_task(self.task).instruction_for(dict(self.colors))


@dataclass(frozen=True)
class CorpusConfig:
    """``held_out_tasks``: tasks whose paper setting (paper colours) never appears in the corpus;
    ``episodes_per_task``: successful demos per task, spread over its colour settings and the
    ``variations``; ``action_noise`` / ``home_noise``: see ``sim.recorder.RecordConfig``."""

    held_out_tasks: tuple[str, ...] = PAPER_TARGETS
    episodes_per_task: int = 480
    variations: tuple[str, ...] = ("none", "lighting", "form", "distractors")
    image_size: int = 224
    seed_offset: int = 10_000
    include_unseen: bool = False  # `pick_mug` is the paper's unseen task; kept out by default
    tasks: tuple[str, ...] = field(default=())  # explicit task list (default: every seen simulated task)
    action_noise: float = 0.08
    home_noise: float = 0.2
    noise_free_tasks: tuple[str, ...] = ("marker_in_mug",)  # the marker grasp fails under command noise
    # tasks with another episode count than episodes_per_task: the skills the targets share (pick, place,
    # press) get the most data, picking the most of all (it is also the first half of placing)
    task_episodes: dict[str, int] = field(default_factory=lambda: {"pick_cube": 600, "marker_in_mug": 150,
                                                                   "push_cup": 96})

    def episodes_for(self, task: str) -> int:
        return int(self.task_episodes.get(task, self.episodes_per_task))

    def __post_init__(self):
        if self.episodes_per_task < 1:
            raise ValueError(f"CorpusConfig.episodes_per_task: expected >= 1, found {self.episodes_per_task}")
        if not self.variations:
            raise ValueError("CorpusConfig.variations: expected at least one variation")


def corpus_tasks(cfg: CorpusConfig) -> list[str]:
    """The simulated tasks the corpus draws settings from."""
    from robosteer_assets.sim.tasks import TASKS

    names = list(cfg.tasks) or [t for t, spec in TASKS.items() if spec.seen or cfg.include_unseen]
    unknown = sorted(set(names) - set(TASKS)) + sorted(set(cfg.held_out_tasks) - set(TASKS))
    if unknown:
        raise ValueError(f"CorpusConfig: unknown simulated tasks {unknown}; expected some of {sorted(TASKS)}")
    return names


def corpus_settings(cfg: CorpusConfig) -> list[CorpusSetting]:
    """Every (task, colours) setting of the corpus, without the held-out paper settings."""
    from robosteer_assets.sim.tasks import COLORS, TASKS

    out = []
    for task in corpus_tasks(cfg):
        spec = TASKS[task]
        paper = tuple(sorted(spec.default_colors().items())) if spec.template else ()
        if not spec.template:
            if task not in cfg.held_out_tasks:
                out.append(CorpusSetting(task))
            continue
        slots = sorted(spec.default_colors())
        for combo in itertools.product(sorted(COLORS), repeat=len(slots)):
            colors = tuple(zip(slots, combo))
            if task in cfg.held_out_tasks and colors == paper:
                continue
            out.append(CorpusSetting(task, () if colors == paper else colors))
    if not out:
        raise ValueError(f"CorpusConfig: every setting is held out ({cfg.held_out_tasks}); the corpus would be empty")
    return out


def _split(n: int, k: int) -> list[int]:
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


def _record_setting(demos_root: Path, cfg: CorpusConfig, setting: CorpusSetting, n_setting: int,
                    seed_base: int) -> list[Path]:
    """Record one setting's episodes into ``<demos_root>/<setting folder>/``, cycling the variations."""
    from dataclasses import replace

    from robosteer_assets.sim.recorder import RecordConfig, record_demos

    rec_cfg = RecordConfig(image_size=cfg.image_size, write_failures=False, action_noise=cfg.action_noise,
                           home_noise=cfg.home_noise, max_attempts_factor=4.0)
    if setting.task in cfg.noise_free_tasks:
        rec_cfg = replace(rec_cfg, action_noise=0.0)
    dirs: list[Path] = []
    for vi, (variation, n) in enumerate(zip(cfg.variations, _split(n_setting, len(cfg.variations)))):
        if n:
            dirs += record_demos(setting.task, n, demos_root, seed=seed_base + 100 * vi, variation=variation,
                                 cfg=rec_cfg, colors=dict(setting.colors), folder=setting.folder)
    log.info("corpus: %s (%s): %d episodes", setting.folder, setting.instruction, len(dirs))
    return dirs


def record_corpus(demos_root: str | os.PathLike, cfg: CorpusConfig = CorpusConfig(),
                  workers: int = 1) -> dict[str, list[Path]]:
    """Record the corpus into ``<demos_root>/<setting folder>/`` (DROID raw layout), cycling the
    variations over each setting's episodes. Returns the episode folders per setting folder.
    Settings whose folder already holds enough episodes are left as they are (a killed recording
    resumes with the missing settings). ``workers`` > 1 records that many settings at once in
    spawned processes; every setting has its own seeds, so the corpus is the same either way."""
    import multiprocessing as mp
    import shutil
    from concurrent.futures import ProcessPoolExecutor

    from robosteer_assets.droid.layout import find_episode_dirs

    if workers < 1:
        raise ValueError(f"record_corpus: workers: expected >= 1, found {workers}")
    demos_root = Path(demos_root)
    by_task: dict[str, list[CorpusSetting]] = {}
    for s in corpus_settings(cfg):
        by_task.setdefault(s.task, []).append(s)
    out: dict[str, list[Path]] = {}
    order: list[str] = []
    jobs = []
    for ti, (task, group) in enumerate(sorted(by_task.items())):
        for si, (setting, n_setting) in enumerate(zip(group, _split(cfg.episodes_for(task), len(group)))):
            if n_setting == 0:
                continue
            folder = setting.folder
            order.append(folder)
            existing = find_episode_dirs(demos_root / folder) if (demos_root / folder).exists() else []
            if len(existing) >= n_setting:
                out[folder] = existing
                continue
            if (demos_root / folder).exists():  # a recording that was cut off: record the setting again
                shutil.rmtree(demos_root / folder)
            jobs.append((setting, n_setting, cfg.seed_offset + 100_000 * ti + 1000 * si))
    if jobs:
        log.info("corpus: recording %d settings (%d episodes) with %d workers", len(jobs),
                 sum(n for _, n, _ in jobs), workers)
    if workers == 1 or len(jobs) <= 1:
        for job in jobs:
            out[job[0].folder] = _record_setting(demos_root, cfg, *job)
    else:
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=mp.get_context("spawn")) as pool:
            futures = {job[0].folder: pool.submit(_record_setting, demos_root, cfg, *job) for job in jobs}
            for i, (folder, fut) in enumerate(futures.items()):
                out[folder] = fut.result()
                log.info("corpus: %s: %d episodes (%d/%d settings)", folder, len(out[folder]), i + 1, len(jobs))
    return {folder: out[folder] for folder in order}
