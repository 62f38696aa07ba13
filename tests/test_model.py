import pytest
import torch

from mia.core.modeling.alignment import ranking_loss
from mia.core.modeling.model import ModelSpec, create_model
from mia.plugins.torchvision_encoders import _stripe_weights
from mia.plugins.bigru import BiGRUTextEncoder


def test_bigru_ignores_padding_and_runs_backward_over_real_words():
    torch.manual_seed(0)
    encoder = BiGRUTextEncoder(vocab_size=20, embed_dim=8, word_dim=6, hidden=5).eval()
    tokens = torch.tensor([[3, 4, 5, 0, 0], [6, 7, 8, 9, 2]])
    pooled = encoder.pooled(tokens)
    alone = encoder.pooled(tokens[:1, :3])  # same sentence without padding
    assert torch.allclose(pooled[0], alone[0], atol=1e-6)
    # reference: the backward GRU over the reversed real words only
    embedded = encoder.embedding(torch.tensor([[5, 4, 3]]))
    backward, _ = encoder.backward_gru(embedded)
    forward, _ = encoder.forward_gru(encoder.embedding(torch.tensor([[3, 4, 5]])))
    reference = torch.cat([forward, backward.flip(1)], dim=-1).max(dim=1).values
    assert torch.allclose(pooled[0], reference[0], atol=1e-6)


def test_bigru_final_reads_both_directions_final_hidden_states():
    """``bigru-final``'s sentence vector is the paper's: the forward GRU's last hidden state
    after the last real word and the backward GRU's after the first, padding never read."""
    torch.manual_seed(0)
    encoder = BiGRUTextEncoder(vocab_size=20, embed_dim=8, word_dim=6, hidden=5, pooling="ends").eval()
    tokens = torch.tensor([[3, 4, 5, 0, 0], [6, 7, 8, 9, 2]])
    _, forward_final = encoder.forward_gru(encoder.embedding(torch.tensor([[3, 4, 5]])))
    _, backward_final = encoder.backward_gru(encoder.embedding(torch.tensor([[5, 4, 3]])))
    reference = torch.cat([forward_final[0, 0], backward_final[0, 0]])
    assert torch.allclose(encoder.pooled(tokens)[0], reference, atol=1e-6)
    assert torch.equal(encoder.pooled(torch.zeros(1, 4, dtype=torch.long)), torch.zeros(1, 10))


def test_bigru_wide_is_the_re_implementations_width():
    """``bigru-wide``: the same encoder at the public re-implementation's GRU width."""
    from mia.core.modeling.model import encoder_factory
    from mia.plugins.bigru import WIDE_HIDDEN

    encoder = encoder_factory("text-encoder", "bigru-wide")(vocab_size=20, embed_dim=8).eval()
    assert encoder.forward_gru.hidden_size == encoder.backward_gru.hidden_size == WIDE_HIDDEN == 1024
    global_, phrase_vectors, mask = encoder(torch.tensor([[3, 4, 0]]), torch.tensor([[[3, 4], [0, 0]]]))
    assert global_.shape == (1, 8) and phrase_vectors.shape == (1, 2, 8) and mask.tolist() == [[True, False]]


def test_bigru_all_pad_rows_are_zero_and_masked():
    encoder = BiGRUTextEncoder(vocab_size=20, embed_dim=8).eval()
    tokens = torch.tensor([[3, 4, 0]])
    phrases = torch.tensor([[[3, 4], [0, 0]]])
    global_, phrase_vectors, mask = encoder(tokens, phrases)
    assert global_.shape == (1, 8) and phrase_vectors.shape == (1, 2, 8)
    assert mask.tolist() == [[True, False]]
    assert torch.equal(encoder.pooled(torch.zeros(2, 4, dtype=torch.long)), torch.zeros(2, 512))


@pytest.mark.parametrize("rows, parts", [(12, 6), (6, 6), (4, 6), (7, 3)])
def test_stripe_weights_average_contiguous_rows(rows, parts):
    weights = torch.tensor(_stripe_weights(rows, parts))
    assert torch.allclose(weights.sum(dim=0), torch.ones(parts))
    assert (weights > 0).any(dim=1).all()  # every row feeds some stripe
    if rows % parts == 0:
        expected = torch.nn.functional.adaptive_avg_pool1d(torch.eye(rows)[None], parts)[0]
        assert torch.allclose(weights, expected)


@pytest.mark.parametrize("encoder", ["resnet18", "mobilenet_v2", "resnet50"])
def test_image_encoders_give_global_and_stripes(encoder):
    model = create_model(ModelSpec(image_encoder=encoder, embed_dim=16, num_parts=3, vocab_size=10, num_classes=4))
    image = model.eval().encode_image(torch.randn(2, 3, 96, 32))
    assert image.global_.shape == (2, 16) and image.parts.shape == (2, 3, 16)


def test_ranking_loss_uses_hardest_negative_and_skips_same_person():
    sim = torch.tensor([[0.9, 0.5, 0.8], [0.1, 0.7, 0.0], [0.85, 0.2, 0.6]])
    labels = torch.tensor([0, 1, 0])  # pairs 0 and 2 are the same person: not negatives
    # text->image: t0 hardest wrong image = i1 (0.5); t1: max(0.1, 0.0)=0.1; t2: i1 (0.2)
    # image->text: i0 hardest wrong text = t1 (0.1); i1: max(0.5, 0.2)=0.5; i2: t1 (0.0)
    margin = 0.2
    t2i = [max(0, margin - 0.9 + 0.5), max(0, margin - 0.7 + 0.1), max(0, margin - 0.6 + 0.2)]
    i2t = [max(0, margin - 0.9 + 0.1), max(0, margin - 0.7 + 0.5), max(0, margin - 0.6 + 0.0)]
    expected = (sum(t2i) + sum(i2t)) / 3
    assert ranking_loss(sim, labels, margin).item() == pytest.approx(expected)


def test_ranking_loss_with_all_negatives_sums_every_wrong_pair():
    """The public re-implementation's variant: every negative of each anchor, summed."""
    sim = torch.tensor([[0.9, 0.5, 0.8], [0.1, 0.7, 0.0], [0.85, 0.2, 0.6]])
    labels = torch.tensor([0, 1, 0])
    margin = 0.6  # wide enough that several negatives are inside it
    hinge = lambda positive, negative: max(0.0, margin - positive + negative)  # noqa: E731
    # text t against the wrong images of its row; image i against the wrong texts of its column
    t2i = [hinge(0.9, 0.5), hinge(0.7, 0.1) + hinge(0.7, 0.0), hinge(0.6, 0.2)]
    i2t = [hinge(0.9, 0.1), hinge(0.7, 0.5) + hinge(0.7, 0.2), hinge(0.6, 0.0)]
    expected = (sum(t2i) + sum(i2t)) / 3
    assert ranking_loss(sim, labels, margin, "all").item() == pytest.approx(expected)
    assert ranking_loss(sim, labels, margin, "all").item() > ranking_loss(sim, labels, margin).item()


def test_global_similarity_is_cosine_for_all_pairs():
    model = create_model(ModelSpec(image_encoder="resnet18", embed_dim=16, vocab_size=10, num_classes=4)).eval()
    image = model.encode_image(torch.randn(3, 3, 64, 32))
    text = model.encode_text(torch.tensor([[2, 3], [4, 0], [5, 6]]), torch.zeros(3, 0, 1, dtype=torch.long))
    batched = model.similarity(text, image)
    for t in range(3):
        for i in range(3):
            ref = torch.nn.functional.cosine_similarity(text.global_[t], image.global_[i], dim=0)
            assert batched[t, i].item() == pytest.approx(ref.item(), abs=1e-5)


def test_linear_image_heads_drop_the_norms_or_say_why_not(monkeypatch):
    """--image-heads linear: the built-in encoders' heads lose their BatchNorm (the global
    vector is the Linear of the pooled map); an encoder that cannot drop them is one line."""
    from torch import nn

    from mia.core.base.errors import MiaError
    import mia.core.modeling.model as model_module

    spec = dict(image_encoder="resnet18", alignments=["global", "part"], embed_dim=16, num_parts=3, vocab_size=9,
                num_classes=3, image_size=(64, 32))
    encoder = create_model(ModelSpec(**spec, image_heads="linear")).image_encoder.eval()
    assert not any(isinstance(m, nn.BatchNorm1d) for m in encoder.modules())
    images = torch.randn(2, 3, 64, 32)
    global_, _ = encoder(images)
    pooled, _ = encoder.pooled_rows(images)
    assert torch.allclose(global_, encoder.global_head[0](pooled), atol=1e-6)
    real = model_module.encoder_factory
    monkeypatch.setattr(model_module, "encoder_factory", lambda kind, name: (
        (lambda embed_dim, num_parts, weights=None: nn.Identity()) if kind == "image-encoder" else real(kind, name)))
    with pytest.raises(MiaError, match="--image-heads linear: the image encoder 'resnet18' cannot drop"):
        create_model(ModelSpec(**spec, image_heads="linear"))
