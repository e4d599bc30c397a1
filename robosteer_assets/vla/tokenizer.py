"""Prompt tokenizer (openpi_facts.md §3.2): SentencePiece from a LOCAL model file.

Real configs use the PaliGemma tokenizer (``paligemma_tokenizer.model``) that the user supplies;
nothing is ever downloaded. Tiny CPU configs use a small SentencePiece model trained here from the
task instructions (:func:`train_tiny_tokenizer`) and stored with the checkpoint.

Formats (exactly openpi's):
* text cleaning: ``strip()``, ``_`` → space, newline → space (no lower-casing);
* pi0:   ``encode(text, add_bos) + encode("\\n")`` (the newline marks the start of the answer);
* pi0.5: the *normalised* robot state (before padding, 8 dims for DROID) is discretised into 256 bins,
  ``d = digitize(s, linspace(-1, 1, 257)[:-1]) - 1`` (values −1…255, no clipping), and
  ``"Task: {text}, State: {d0 d1 ...};\\nAction: "`` is encoded with BOS;
* right-pad with token 0 / mask False to ``max_token_len``; longer prompts are truncated (warning).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robosteer_assets.common.atomic import write_bytes_atomic
from robosteer_assets.common.progress import get_logger

log = get_logger("vla.tokenizer")

PAD_ID = 0
NUM_STATE_BINS = 256
# tokens the pi0.5 prompt template needs besides the instruction's own characters
PI05_USER_SYMBOLS = tuple("0123456789") + ("-", ",", ";", ":", "\n", "Task", "State", "Action")
TOKENIZER_FILE = "tokenizer.model"


class TokenizerError(ValueError):
    """A tokenizer model file or a prompt that cannot be used."""


def clean_text(text: str) -> str:
    return text.strip().replace("_", " ").replace("\n", " ")


def discretize_state(state: np.ndarray, num_bins: int = NUM_STATE_BINS) -> np.ndarray:
    """openpi's pi0.5 state bins: ``digitize(s, linspace(-1, 1, num_bins + 1)[:-1]) - 1``, no clipping
    (s < −1 gives −1, s ≥ 1 − 2/num_bins gives num_bins − 1)."""
    edges = np.linspace(-1.0, 1.0, num_bins + 1)[:-1]
    return np.digitize(np.asarray(state, np.float64), bins=edges) - 1


def pi05_prompt(text: str, state: np.ndarray, num_bins: int = NUM_STATE_BINS) -> str:
    state_str = " ".join(str(int(d)) for d in discretize_state(state, num_bins))
    return f"Task: {clean_text(text)}, State: {state_str};\nAction: "


@dataclass(frozen=True)
class TokenizerConfig:
    """``max_token_len``: 48 (pi0) / 200 (pi0.5) in openpi; ``discrete_state_input``: pi0.5 prompt
    format with the discretised state; ``vocab_size``: ids must stay below the model's vocabulary."""

    max_token_len: int = 48
    discrete_state_input: bool = False
    num_state_bins: int = NUM_STATE_BINS
    vocab_size: int | None = None

    @classmethod
    def for_model(cls, cfg) -> "TokenizerConfig":
        return cls(max_token_len=int(cfg.max_token_len), discrete_state_input=bool(cfg.pi05),
                   vocab_size=int(cfg.vocab_size))


class PromptTokenizer:
    """SentencePiece tokenizer with openpi's pi0 / pi0.5 prompt formats."""

    def __init__(self, model_path: str | os.PathLike, config: TokenizerConfig = TokenizerConfig()):
        import sentencepiece as spm

        self.model_path = Path(model_path)
        self.config = config
        if not self.model_path.is_file():
            raise TokenizerError(f"{self.model_path}: tokenizer model file not found (expected a SentencePiece "
                                 f".model file, e.g. the PaliGemma tokenizer; it is never downloaded)")
        try:
            self._sp = spm.SentencePieceProcessor(model_file=str(self.model_path))
        except (RuntimeError, OSError) as e:
            raise TokenizerError(f"{self.model_path}: not a SentencePiece model ({e})") from None
        if config.vocab_size is not None and self.vocab_size > config.vocab_size:
            raise TokenizerError(f"{self.model_path}: tokenizer has {self.vocab_size} pieces but the model's "
                                 f"vocab_size is {config.vocab_size} (ids must be < vocab_size)")
        if self._sp.bos_id() < 0:
            raise TokenizerError(f"{self.model_path}: tokenizer has no BOS token (expected one, as PaliGemma's)")

    @classmethod
    def for_model(cls, cfg, model_path: str | os.PathLike) -> "PromptTokenizer":
        return cls(model_path, TokenizerConfig.for_model(cfg))

    @property
    def vocab_size(self) -> int:
        return int(self._sp.get_piece_size())

    @property
    def bos_id(self) -> int:
        return int(self._sp.bos_id())

    def encode(self, text: str, add_bos: bool = False) -> list[int]:
        return list(self._sp.encode(text, add_bos=add_bos))

    def decode(self, ids) -> str:
        return self._sp.decode([int(i) for i in ids if int(i) != PAD_ID])

    def prompt_ids(self, prompt: str, state: np.ndarray | None = None) -> list[int]:
        """Token ids of one prompt in the model's format, before padding/truncation."""
        if not isinstance(prompt, str):
            raise TokenizerError(f"prompt: expected str, found {type(prompt).__name__}")
        if self.config.discrete_state_input:
            if state is None:
                raise TokenizerError("prompt: the pi0.5 format needs the normalised state, found None")
            state = np.asarray(state)
            if state.ndim != 1:
                raise TokenizerError(f"state: expected a 1-D normalised state vector, found shape {state.shape}")
            return self.encode(pi05_prompt(prompt, state, self.config.num_state_bins), add_bos=True)
        return self.encode(clean_text(prompt), add_bos=True) + self.encode("\n")

    def tokenize(self, prompt: str, state: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(tokens int32 [max_token_len], mask bool [max_token_len]): right-padded with 0 / False."""
        ids = self.prompt_ids(prompt, state)
        L = self.config.max_token_len
        if len(ids) > L:
            log.warning("prompt of %d tokens truncated to max_token_len=%d: %r", len(ids), L, prompt[:80])
            ids = ids[:L]
        tokens = np.full(L, PAD_ID, np.int32)
        tokens[: len(ids)] = ids
        mask = np.zeros(L, bool)
        mask[: len(ids)] = True
        return tokens, mask

    def tokenize_batch(self, prompts, states: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """[B, L] tokens and masks for a list of prompts (and their normalised states [B, d] for pi0.5)."""
        prompts = list(prompts)
        if states is not None and len(states) != len(prompts):
            raise TokenizerError(f"tokenize_batch: {len(prompts)} prompts but {len(states)} states")
        out = [self.tokenize(p, None if states is None else states[i]) for i, p in enumerate(prompts)]
        if not out:
            L = self.config.max_token_len
            return np.zeros((0, L), np.int32), np.zeros((0, L), bool)
        return np.stack([t for t, _ in out]), np.stack([m for _, m in out])


# ----------------------------------------------------------------------------- tiny tokenizer

@dataclass(frozen=True)
class TinyTokenizerConfig:
    """Training settings for a small SentencePiece model (robust to a handful of short sentences):
    BPE with a *soft* vocabulary limit (``hard_vocab_limit=False``: fewer pieces when the corpus is
    small), full character coverage, identity normalisation (keeps ``\\n`` and case), digits split,
    Gemma's special ids (pad 0, eos 1, bos 2, unk 3) and the pi0.5 template pieces as user symbols.
    ``add_alphabet``: include a–z / A–Z in the corpus when the vocabulary has room, so instructions
    unseen at training time still tokenize into characters instead of ``<unk>``.
    ``state_bin_symbols``: when the vocabulary has room (``state_bin_spare`` pieces left after them),
    every pi0.5 state bin ``"▁-1"`` … ``"▁255"`` is one piece, so the 8-dim DROID state costs 8 tokens
    instead of ~32 single digits and the pi0.5 prompt fits a tiny config's ``max_token_len``."""

    model_type: str = "bpe"
    character_coverage: float = 1.0
    hard_vocab_limit: bool = False
    user_symbols: tuple[str, ...] = PI05_USER_SYMBOLS
    add_alphabet: bool = True
    alphabet_min_vocab: int = 128
    state_bin_symbols: bool = True
    state_bin_spare: int = 64


_ALPHABET = ("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def train_tiny_tokenizer(instructions, out_path: str | os.PathLike, vocab_size: int,
                         config: TinyTokenizerConfig = TinyTokenizerConfig()) -> Path:
    """Train a small SentencePiece model on ``instructions`` and write it atomically to ``out_path``.
    The result has at most ``vocab_size`` pieces (often fewer)."""
    import sentencepiece as spm

    corpus = [clean_text(str(s)) for s in instructions]
    corpus = [s for s in corpus if s]
    if not corpus:
        raise TokenizerError("train_tiny_tokenizer: expected at least one non-empty instruction, found none")
    if config.add_alphabet and vocab_size >= config.alphabet_min_vocab:
        corpus += list(_ALPHABET)
    # the template words also appear in real text so their characters are covered
    corpus.append("Task: State: Action:")
    specials = 4
    chars = set("".join(corpus)) | {" "}
    needed = specials + len(config.user_symbols) + len(chars)
    symbols = list(config.user_symbols)
    bins = [f"\u2581{i}" for i in range(-1, NUM_STATE_BINS)]  # "▁-1" ... "▁255": SentencePiece's space mark
    if config.state_bin_symbols and vocab_size >= needed + len(bins) + config.state_bin_spare:
        symbols += bins
    if vocab_size < needed:
        raise TokenizerError(f"train_tiny_tokenizer: vocab_size {vocab_size} is too small: the instructions use "
                             f"{len(chars)} distinct characters, plus {len(config.user_symbols)} user symbols and "
                             f"{specials} special tokens (need >= {needed})")
    buf = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(corpus), model_writer=buf, vocab_size=vocab_size, model_type=config.model_type,
            hard_vocab_limit=config.hard_vocab_limit, character_coverage=config.character_coverage,
            pad_id=0, eos_id=1, bos_id=2, unk_id=3, user_defined_symbols=symbols,
            normalization_rule_name="identity", remove_extra_whitespaces=False, split_digits=True,
            minloglevel=2, num_threads=1)
    except RuntimeError as e:
        raise TokenizerError(f"train_tiny_tokenizer: SentencePiece training failed for vocab_size={vocab_size} "
                             f"on {len(corpus)} sentences: {e}") from None
    out = Path(out_path)
    write_bytes_atomic(out, buf.getvalue())
    log.info("trained a %s tokenizer with %d pieces (limit %d) on %d instructions -> %s", config.model_type,
             spm.SentencePieceProcessor(model_proto=buf.getvalue()).get_piece_size(), vocab_size,
             len(instructions) if hasattr(instructions, "__len__") else -1, out)
    return out
