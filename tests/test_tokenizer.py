from mia.core.data.tokenizer import PAD_ID, UNK_ID, Vocabulary, pad_ids, tokenize


def test_tokenize_lowercases_and_drops_punctuation():
    assert tokenize("The woman's T-shirt is RED, and 2 bags.") == \
        ["the", "woman's", "t", "shirt", "is", "red", "and", "2", "bags"]


def test_vocabulary_min_freq_order_and_specials():
    vocab = Vocabulary.build(["red red blue", "red blue green"], min_freq=2)
    assert vocab.words == ["<pad>", "<unk>", "red", "blue"]
    assert vocab.encode("Green red", max_length=10) == [UNK_ID, vocab.index["red"]]
    assert vocab.encode("red red red", max_length=2) == [2, 2]
    assert vocab.decode([2, 3, PAD_ID]) == "red blue"


def test_vocabulary_round_trips_through_a_word_list():
    vocab = Vocabulary.build(["a man in a black coat"])
    assert Vocabulary(list(vocab.words)).index == vocab.index


def test_vocabulary_rejects_bad_lists():
    import pytest

    with pytest.raises(ValueError):
        Vocabulary(["red", "<pad>"])
    with pytest.raises(ValueError):
        Vocabulary(["<pad>", "<unk>", "red", "red"])


def test_pad_ids():
    assert pad_ids([[1, 2, 3], [], [4]], 2) == [[1, 2], [0, 0], [4, 0]]
