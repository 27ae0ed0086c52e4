"""Long-text chunking: limits respected, tags kept with their text, nothing lost."""

from __future__ import annotations

import random
import re

import pytest

from ttsframe.core.speech.chunking import split_text

TAG = re.compile(r"\[S\d\]")


def words(text: str) -> list[str]:
    return TAG.sub(" ", text).split()


def test_short_text_is_one_chunk():
    assert split_text("[S1] Hello there.", 100) == ["[S1] Hello there."]


def test_sentences_are_grouped_under_the_limit():
    text = "[S1] " + " ".join(f"Sentence number {i} is here." for i in range(40))
    chunks = split_text(text, 120)
    assert len(chunks) > 5
    for chunk in chunks:
        assert len(chunk.encode()) <= 120
        assert chunk.startswith("[S1] ")
        assert chunk.endswith(".")  # split at sentence ends, not mid-sentence
    assert words(" ".join(chunks)) == words(text)


def test_speaker_turn_split_keeps_its_speaker():
    text = "[S1] " + "One two three four five. " * 10 + "[S2] " + "Six seven eight. " * 10
    chunks = split_text(text, 80)
    s2_started = False
    for chunk in chunks:
        assert TAG.match(chunk), chunk  # every chunk starts with a tag
        if "[S2]" in chunk:
            s2_started = True
        if s2_started and "[S2]" not in chunk:
            pytest.fail(f"chunk after the S2 turn lost its tag: {chunk!r}")
    assert words(" ".join(chunks)) == words(text)


def test_tags_are_never_alone():
    text = "[S1] Hi. [S2] " + "Word " * 60 + "end."
    for chunk in split_text(text, 64):
        assert TAG.sub("", chunk).strip(), chunk


def test_over_long_sentence_splits_at_clauses_then_words():
    sentence = ", ".join(f"clause {i} goes on" for i in range(30)) + "."
    chunks = split_text(f"[S2] {sentence}", 70)
    assert all(len(c.encode()) <= 70 for c in chunks)
    assert words(" ".join(chunks)) == words(f"[S2] {sentence}")


def test_unbroken_word_and_multibyte_text():
    text = "[S1] " + "ü" * 300 + " 終わり。" * 20
    chunks = split_text(text, 50)
    assert all(len(c.encode()) <= 50 for c in chunks)
    assert "".join(TAG.sub("", c).replace(" ", "") for c in chunks) == \
        TAG.sub("", text).replace(" ", "")


def test_random_texts_never_lose_words_or_exceed_limits():
    rng = random.Random(7)
    vocab = ["hello", "world,", "yes.", "no!", "(laughs)", "maybe?", "[S1]", "[S2]", "ok;"]
    for _ in range(200):
        text = "[S1] " + " ".join(rng.choice(vocab) for _ in range(rng.randint(1, 200)))
        limit = rng.randint(24, 200)
        chunks = split_text(text, limit)
        assert all(len(c.encode()) <= limit for c in chunks)
        assert words(" ".join(chunks)) == words(text)
        assert all(TAG.match(c) for c in chunks)


def test_chunk_text_keeps_the_count_but_evens_the_sizes():
    from ttsframe.core.speech.chunking import chunk_text

    text = "[S1] " + " ".join(f"Sentence {i} is here." for i in range(21))  # 20+ bytes each
    greedy = split_text(text, 200)
    even = chunk_text(text, 200)
    assert len(even) == len(greedy) >= 3
    sizes = [len(c.encode()) for c in even]
    assert len(greedy[-1].encode()) < 100  # the greedy split leaves a short tail
    assert max(sizes) <= 200 and min(sizes) >= 0.7 * max(sizes)
    assert words(" ".join(even)) == words(text)
    assert chunk_text("[S1] Short.", 200) == ["[S1] Short."]


def test_chunk_text_on_random_texts_respects_the_limit():
    from ttsframe.core.speech.chunking import chunk_text

    rng = random.Random(11)
    vocab = ["hello", "world,", "yes.", "no!", "(laughs)", "maybe?", "[S1]", "[S2]", "ok;"]
    for _ in range(100):
        text = "[S1] " + " ".join(rng.choice(vocab) for _ in range(rng.randint(1, 300)))
        limit = rng.randint(32, 300)
        chunks = chunk_text(text, limit)
        assert len(chunks) == len(split_text(text, limit))
        assert all(len(c.encode()) <= limit for c in chunks)
        assert words(" ".join(chunks)) == words(text)
        assert all(TAG.match(c) for c in chunks)


def test_the_first_chunk_holds_every_speaker_when_they_fit():
    from ttsframe.core.speech.chunking import speakers_of, split_first_speakers

    text = ("[S1] Hello there, how are you doing today? I hope well, since the weather is "
            "lovely and the birds sing. [S2] Fine thanks. And you? [S1] Great. ") * 3
    first, rest = split_first_speakers(text, 128, 256)
    assert speakers_of(first) == ["S1", "S2"]
    assert first.endswith("[S2] Fine thanks.") and rest.startswith("[S2] And you?")
    def words(t: str) -> list[str]:
        return re.sub(r"\[S\d\]", " ", t).split()

    assert words(f"{first} {rest}") == words(text)  # no word lost
    late = "[S1] " + "Words go on and on. " * 30 + "[S2] Finally me."
    first, rest = split_first_speakers(late, 128, 256)
    assert speakers_of(first) == ["S1"] and rest.endswith("[S2] Finally me.")
