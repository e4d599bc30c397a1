"""Prompt formats of openpi_facts §3.2 with a tiny SentencePiece model trained by the test."""

import logging

import numpy as np
import pytest

from robosteer_assets.vla.tokenizer import (
    PAD_ID, PromptTokenizer, TokenizerConfig, TokenizerError, clean_text, discretize_state, pi05_prompt,
    train_tiny_tokenizer)

INSTRUCTIONS = ["put the marker in the cup", "open the top drawer", "pick_up the red cube"]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return train_tiny_tokenizer(INSTRUCTIONS, tmp_path_factory.mktemp("tok") / "tokenizer.model", vocab_size=128)


def test_trains_within_the_vocab_even_from_very_few_words(tmp_path):
    for vocab in (48, 64, 512):
        p = train_tiny_tokenizer(["open it"], tmp_path / f"t{vocab}.model", vocab_size=vocab)
        tok = PromptTokenizer(p, TokenizerConfig(max_token_len=64, discrete_state_input=True, vocab_size=vocab))
        assert tok.vocab_size <= vocab and tok.bos_id == 2
        ids, mask = tok.tokenize("open it", np.array([-0.3, 0.7]))
        assert ids.max() < vocab
        assert tok.decode(ids) == "Task: open it, State: 89 217;\nAction: "  # no <unk>, exact round trip
    with pytest.raises(TokenizerError, match="vocab_size 10 is too small"):
        train_tiny_tokenizer(INSTRUCTIONS, tmp_path / "small.model", vocab_size=10)
    with pytest.raises(TokenizerError, match="at least one non-empty instruction"):
        train_tiny_tokenizer(["  "], tmp_path / "empty.model", vocab_size=64)


def test_pi0_format_bos_text_newline_and_padding(model_file):
    tok = PromptTokenizer(model_file, TokenizerConfig(max_token_len=24))
    ids, mask = tok.tokenize("  pick_up the red cube\n")
    expected = tok.encode("pick up the red cube", add_bos=True) + tok.encode("\n")
    n = len(expected)
    assert ids.dtype == np.int32 and mask.dtype == bool and ids.shape == mask.shape == (24,)
    assert ids[0] == tok.bos_id
    assert ids[:n].tolist() == expected and mask[:n].all()
    assert (ids[n:] == PAD_ID).all() and not mask[n:].any()
    assert tok.decode(ids) == "pick up the red cube \n"  # encode("\n") keeps SentencePiece's dummy prefix


def test_pi05_prompt_and_state_bins(model_file):
    edges = np.linspace(-1, 1, 257)[:-1]
    s = np.array([-1.5, -1.0, -0.0001, 0.0, 0.5, 0.9921874, 0.9921875, 1.7])
    d = discretize_state(s)
    assert d.tolist() == [-1, 0, 127, 128, 192, 254, 255, 255]  # no clipping: below -1 gives -1
    np.testing.assert_array_equal(d, np.digitize(s, edges) - 1)
    text = pi05_prompt("open_the top drawer\n", s)
    assert text == "Task: open the top drawer, State: -1 0 127 128 192 254 255 255;\nAction: "
    tok = PromptTokenizer(model_file, TokenizerConfig(max_token_len=80, discrete_state_input=True))
    ids, mask = tok.tokenize("open_the top drawer\n", s)
    expected = tok.encode(text, add_bos=True)
    assert ids[: len(expected)].tolist() == expected and mask.sum() == len(expected)
    assert tok.decode(ids) == text
    with pytest.raises(TokenizerError, match="needs the normalised state"):
        tok.tokenize("open the top drawer")


def test_truncation_warns_and_batch(model_file, caplog):
    tok = PromptTokenizer(model_file, TokenizerConfig(max_token_len=4))
    with caplog.at_level(logging.WARNING, logger="robosteer.vla.tokenizer"):
        ids, mask = tok.tokenize("put the marker in the cup")
    assert mask.all() and ids.shape == (4,)
    assert any("truncated to max_token_len=4" in r.getMessage() for r in caplog.records)
    ids, mask = PromptTokenizer(model_file, TokenizerConfig(max_token_len=30)).tokenize_batch(INSTRUCTIONS)
    assert ids.shape == (3, 30) and mask.sum(1).min() > 3
    assert clean_text(" a_b\nc ") == "a b c"


def test_bad_model_files(tmp_path, model_file):
    with pytest.raises(TokenizerError, match="tokenizer model file not found"):
        PromptTokenizer(tmp_path / "missing.model")
    junk = tmp_path / "junk.model"
    junk.write_bytes(b"not a model")
    with pytest.raises(TokenizerError, match="not a SentencePiece model"):
        PromptTokenizer(junk)
    with pytest.raises(TokenizerError, match="but the model's vocab_size is 20"):
        PromptTokenizer(model_file, TokenizerConfig(vocab_size=20))


def test_state_bins_are_single_pieces_when_the_vocab_has_room(tmp_path):
    big = PromptTokenizer(train_tiny_tokenizer(INSTRUCTIONS, tmp_path / "big.model", 512),
                          TokenizerConfig(max_token_len=200, discrete_state_input=True))
    small = PromptTokenizer(train_tiny_tokenizer(INSTRUCTIONS, tmp_path / "small.model", 64),
                            TokenizerConfig(max_token_len=200, discrete_state_input=True))
    s = np.linspace(-1.2, 0.95, 8)
    text = pi05_prompt("open the top drawer", s)
    for tok in (big, small):
        assert tok.decode(tok.tokenize("open the top drawer", s)[0]) == text
    n_big, n_small = len(big.prompt_ids("open the top drawer", s)), len(small.prompt_ids("open the top drawer", s))
    assert n_big <= 30 < n_small  # 8 bin pieces vs ~3 digits + a space per dimension
