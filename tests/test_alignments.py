"""Every alignment's batched all-pairs score against a slow, literal per-pair reference."""

import pytest
import torch
import torch.nn.functional as F

from mia.core.modeling.alignment import LossSettings
from mia.core.evaluation.evaluate import score_chunks
from mia.core.modeling.features import ImageFeatures, TextFeatures
from mia.core.modeling.model import ModelSpec, create_model
from mia.plugins.alignments.fine_align import FineAlignment
from mia.plugins.alignments.global_align import GlobalAlignment
from mia.plugins.alignments.part_align import PartAlignment

D, K, M = 12, 4, 5


def random_features(texts=3, images=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = ImageFeatures(torch.randn(images, D, generator=g), torch.randn(images, K, D, generator=g))
    mask = torch.rand(texts, M, generator=g) > 0.3
    mask[0] = torch.tensor([True, True, False, False, False])
    mask[-1] = False  # a caption with no phrases at all
    text = TextFeatures(torch.randn(texts, D, generator=g), torch.randn(texts, M, D, generator=g), mask)
    return text, image


def cos(a, b):
    return F.cosine_similarity(a, b, dim=-1)


def part_reference(alignment, text, image, t, i):
    tau = alignment.temperature
    relation = cos(image.parts[i], alignment.guide_relation(text.global_[t]).expand(K, D))
    guided_image = (torch.softmax(relation / tau, 0)[:, None] * image.parts[i]).sum(0)
    image_score = cos(guided_image, text.global_[t])
    phrases = text.phrases[t][text.phrase_mask[t]]
    if len(phrases) == 0:
        return image_score
    relation = cos(alignment.text_relation(phrases), image.global_[i].expand(len(phrases), D))
    guided_text = (torch.softmax(relation / tau, 0)[:, None] * phrases).sum(0)
    return (image_score + cos(guided_text, image.global_[i])) / 2


def part_on_parts_reference(alignment, text, image, t, i):
    """``rga_mlp="parts"``: the MLPs transform the stripes and the phrases, whose outputs
    are weighed by the other side's global vector and summed."""
    tau = alignment.temperature
    stripes = alignment.stripe_relation(image.parts[i])
    relation = cos(stripes, text.global_[t].expand(K, D))
    image_score = cos((torch.softmax(relation / tau, 0)[:, None] * stripes).sum(0), text.global_[t])
    phrases = text.phrases[t][text.phrase_mask[t]]
    if len(phrases) == 0:
        return image_score
    phrases = alignment.text_relation(phrases)
    relation = cos(phrases, image.global_[i].expand(len(phrases), D))
    guided_text = (torch.softmax(relation / tau, 0)[:, None] * phrases).sum(0)
    return (image_score + cos(guided_text, image.global_[i])) / 2


def fine_reference(alignment, text, image, t, i):
    tau = alignment.temperature
    phrases = text.phrases[t][text.phrase_mask[t]]
    if len(phrases) == 0:
        return torch.tensor(0.0)
    parts = image.parts[i]
    phrase_scores = []
    for p in phrases:  # each phrase attends over the stripes
        attention = torch.softmax(cos(p.expand(K, D), parts) / tau, 0)
        phrase_scores.append(cos(p, (attention[:, None] * parts).sum(0)))
    part_scores = []
    for v in parts:  # each stripe attends over the real phrases
        attention = torch.softmax(cos(v.expand(len(phrases), D), phrases) / tau, 0)
        part_scores.append(cos(v, (attention[:, None] * phrases).sum(0)))
    return (torch.stack(phrase_scores).mean() + torch.stack(part_scores).mean()) / 2


def global_reference(alignment, text, image, t, i):
    return cos(text.global_[t], image.global_[i])


@pytest.mark.parametrize("alignment, reference", [
    (GlobalAlignment(D), global_reference),
    (PartAlignment(D), part_reference),
    (PartAlignment(D, rga_mlp="parts"), part_on_parts_reference),
    (FineAlignment(D), fine_reference),
])
@torch.no_grad()
def test_batched_similarity_equals_per_pair_reference(alignment, reference):
    text, image = random_features()
    batched = alignment.eval().similarity(text, image)
    assert batched.shape == (3, 4)
    for t in range(3):
        for i in range(4):
            assert batched[t, i].item() == pytest.approx(reference(alignment, text, image, t, i).item(), abs=1e-5)


@pytest.mark.parametrize("alignment, reference", [
    (PartAlignment(D), part_reference),
    (PartAlignment(D, rga_mlp="parts"), part_on_parts_reference),
    (FineAlignment(D), fine_reference),
])
def test_training_gradients_equal_the_per_pair_references(alignment, reference):
    """Scoring writes over its buffers and shifts exponents by a detached maximum; with
    autograd on, the gradients (features, temperature, relation MLPs) must still be the
    literal formula's."""
    text, image = random_features()
    leaves = [t.clone().requires_grad_(t.is_floating_point()) for t in (*text, *image)]
    text, image = TextFeatures(*leaves[:3]), ImageFeatures(*leaves[3:])
    inputs = [leaves[0], leaves[1], leaves[3], leaves[4], *alignment.parameters()]
    literal = sum(reference(alignment, text, image, t, i) for t in range(3) for i in range(4))
    batched = alignment.similarity(text, image).sum()
    for got, expected in zip(*(torch.autograd.grad(total, inputs, allow_unused=True) for total in (batched, literal))):
        assert (got is None) == (expected is None)
        assert got is None or torch.allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("alignment", [PartAlignment(D), PartAlignment(D, rga_mlp="parts"), FineAlignment(D)])
@torch.no_grad()
def test_a_padded_phrase_never_changes_a_score(alignment):
    text, image = random_features()
    before = alignment.eval().similarity(text, image)
    junk = torch.full((3, 1, D), 1e3)  # a huge vector in a padded slot
    padded = TextFeatures(text.global_, torch.cat([text.phrases, junk], 1),
                          torch.cat([text.phrase_mask, torch.zeros(3, 1, dtype=torch.bool)], 1))
    assert torch.allclose(alignment.similarity(padded, image), before, rtol=0, atol=1e-6)
    # and the values under the mask do not matter either
    scrambled = TextFeatures(text.global_, torch.where(text.phrase_mask[..., None], text.phrases, -7.0), text.phrase_mask)
    assert torch.allclose(alignment.similarity(scrambled, image), before, atol=1e-6)


@torch.no_grad()
def test_chunked_scoring_equals_unchunked():
    model = create_model(ModelSpec(image_encoder="resnet18", alignments=["global", "part", "fine"], embed_dim=D,
                                   num_parts=K, vocab_size=5, num_classes=2,
                                   weights={"global": 1.0, "part": 0.5, "fine": 0.25})).eval()
    text, image = random_features(texts=11, images=7, seed=3)
    whole = model.similarity(text, image)
    expected = (model.alignments["global"].similarity(text, image) + 0.5 * model.alignments["part"].similarity(text, image)
                + 0.25 * model.alignments["fine"].similarity(text, image))
    assert torch.allclose(whole, expected, atol=1e-6)
    for chunk in (1, 3, 4, 100):
        assert torch.allclose(score_chunks(model, text, image, chunk=chunk), whole, atol=1e-6)


def test_scoring_keeps_no_autograd_graph():
    """Evaluation scores a whole split: a graph kept per chunk would hold every pair tensor
    (on the CPU benchmark, 15x the peak memory) and take the eager pooling paths."""
    model = create_model(ModelSpec(image_encoder="resnet18", alignments=["global", "part", "fine"], embed_dim=D,
                                   num_parts=K, vocab_size=5, num_classes=2))
    text, image = random_features(texts=5, images=4, seed=4)
    assert not score_chunks(model, text, image).requires_grad


@torch.no_grad()
def test_an_alignment_with_only_a_similarity_scores_through_the_prepared_path():
    """A plugin that implements just ``similarity`` gets prepare_gallery/score_prepared for free."""
    from mia.core.modeling.alignment import Alignment

    class DotAlignment(Alignment):
        def similarity(self, text, image):
            return text.global_ @ image.global_.T

    model = create_model(ModelSpec(image_encoder="resnet18", alignments=["global"], embed_dim=D, num_parts=K,
                                   vocab_size=5, num_classes=2)).eval()
    model.alignments["dot"] = DotAlignment()
    model.active = ["global", "dot"]
    text, image = random_features(texts=5, images=3)
    expected = model.alignments["global"].similarity(text, image) + text.global_ @ image.global_.T
    assert torch.allclose(score_chunks(model, text, image, chunk=2), expected, atol=1e-5)


def test_part_identity_features_are_the_guided_aggregates_of_matched_pairs():
    alignment = PartAlignment(D).eval()
    text, image = random_features(texts=4, images=4)
    guided_image, guided_text = alignment.identity_features(text, image)
    assert guided_image.shape == guided_text.shape == (4, D)
    tau = alignment.temperature
    relation = cos(image.parts[2], alignment.guide_relation(text.global_[2]).expand(K, D))
    expected = (torch.softmax(relation / tau, 0)[:, None] * image.parts[2]).sum(0)
    assert torch.allclose(guided_image[2], expected, atol=1e-5)
    real = text.phrase_mask[1]
    keys = alignment.text_relation(text.phrases[1, real])
    relation = cos(keys, image.global_[1].expand(len(keys), D))
    expected = (torch.softmax(relation / tau, 0)[:, None] * text.phrases[1, real]).sum(0)
    assert torch.allclose(guided_text[1], expected, atol=1e-5)


def test_with_the_mlp_on_the_parts_identity_features_sum_its_outputs():
    alignment = PartAlignment(D, rga_mlp="parts").eval()
    text, image = random_features(texts=4, images=4)
    guided_image, guided_text = alignment.identity_features(text, image)
    tau = alignment.temperature
    stripes = alignment.stripe_relation(image.parts[2])
    relation = cos(stripes, text.global_[2].expand(K, D))
    assert torch.allclose(guided_image[2], (torch.softmax(relation / tau, 0)[:, None] * stripes).sum(0), atol=1e-5)
    phrases = alignment.text_relation(text.phrases[1, text.phrase_mask[1]])
    relation = cos(phrases, image.global_[1].expand(len(phrases), D))
    assert torch.allclose(guided_text[1], (torch.softmax(relation / tau, 0)[:, None] * phrases).sum(0), atol=1e-5)
    assert not hasattr(alignment, "guide_relation")


def test_all_alignments_train_a_step_without_nan():
    model = create_model(ModelSpec(image_encoder="resnet18", alignments=["global", "part", "fine"], embed_dim=16,
                                   num_parts=3, vocab_size=9, num_classes=3))
    images = torch.randn(4, 3, 64, 32)
    tokens = torch.tensor([[2, 3, 4], [5, 6, 0], [7, 8, 2], [3, 0, 0]])
    phrases = torch.tensor([[[2, 3], [4, 0]], [[5, 6], [0, 0]], [[0, 0], [0, 0]], [[3, 0], [0, 0]]])
    losses = model.losses(model.encode_text(tokens, phrases), model.encode_image(images), torch.tensor([0, 1, 2, 0]),
                          {"global": 1.0, "part": 1.0, "fine": 0.5})
    assert set(losses) == {"global/rank", "global/id", "part/rank", "part/id", "fine/rank"}
    total = sum(losses.values())
    total.backward()
    assert torch.isfinite(total)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_loss_weights_scale_each_alignments_losses():
    torch.manual_seed(0)
    model = create_model(ModelSpec(image_encoder="resnet18", alignments=["global", "part"], embed_dim=16,
                                   num_parts=3, vocab_size=9, num_classes=3)).eval()
    text = model.encode_text(torch.tensor([[2, 3], [4, 5], [6, 7]]), torch.tensor([[[2, 3]], [[4, 0]], [[6, 0]]]))
    image = model.encode_image(torch.randn(3, 3, 64, 32))
    labels = torch.tensor([0, 1, 2])
    full = model.losses(text, image, labels, {"global": 1.0, "part": 1.0})
    scaled = model.losses(text, image, labels, {"global": 1.0, "part": 0.25})
    assert torch.equal(scaled["global/rank"], full["global/rank"])
    assert torch.allclose(scaled["part/rank"], 0.25 * full["part/rank"])
    assert torch.allclose(scaled["part/id"], 0.25 * full["part/id"])


@torch.no_grad()
def test_losses_equal_each_alignments_own_ranking_and_identity_losses():
    """One classifier call for every identity feature and one run of part's relation MLPs
    per step give the losses of scoring and classifying each alignment on its own."""
    from mia.core.modeling.alignment import ranking_loss

    torch.manual_seed(0)
    model = create_model(ModelSpec(image_encoder="resnet18", alignments=["global", "part", "fine"], embed_dim=16,
                                   num_parts=3, vocab_size=9, num_classes=5)).eval()
    text = model.encode_text(torch.tensor([[2, 3], [4, 5], [6, 7]]), torch.tensor([[[2, 3]], [[4, 0]], [[0, 0]]]))
    image = model.encode_image(torch.randn(3, 3, 64, 32))
    labels = torch.tensor([0, 1, 4])
    weights = {"global": 1.0, "part": 0.5, "fine": 2.0}
    losses = model.losses(text, image, labels, weights, LossSettings(margin=0.2, id_weight=0.7))
    for name, weight in weights.items():
        alignment = model.alignments[name]
        expected = weight * ranking_loss(alignment.similarity(text, image), labels, 0.2)
        assert torch.allclose(losses[f"{name}/rank"], expected, atol=1e-6)
        features = alignment.identity_features(text, image)
        if not features:
            assert f"{name}/id" not in losses
            continue
        own = torch.stack([F.cross_entropy(model.classifier(f), labels) for f in features]).mean()
        assert torch.allclose(losses[f"{name}/id"], weight * 0.7 * own, atol=1e-6)


def test_global_id_features_classify_only_the_global_vectors():
    """``id_features="global"`` (the re-implementation's placement) drops part's identity
    loss and leaves every other loss as it was."""
    torch.manual_seed(0)
    model = create_model(ModelSpec(image_encoder="resnet18", alignments=["global", "part"], embed_dim=16,
                                   num_parts=3, vocab_size=9, num_classes=3)).eval()
    text = model.encode_text(torch.tensor([[2, 3], [4, 5], [6, 7]]), torch.tensor([[[2, 3]], [[4, 0]], [[6, 0]]]))
    image = model.encode_image(torch.randn(3, 3, 64, 32))
    labels, weights = torch.tensor([0, 1, 2]), {"global": 1.0, "part": 1.0}
    every = model.losses(text, image, labels, weights, LossSettings(id_features="all"))
    global_only = model.losses(text, image, labels, weights, LossSettings(id_features="global"))
    assert set(every) - set(global_only) == {"part/id"}
    assert all(torch.allclose(global_only[key], every[key]) for key in global_only)


def test_a_fixed_rga_temperature_is_one_and_never_trained():
    learned = PartAlignment(D)
    fixed = PartAlignment(D, rga_temperature="fixed")
    assert float(learned.temperature.detach()) == pytest.approx(0.1)
    assert float(fixed.temperature) == 1.0
    assert "log_temperature" in dict(learned.named_parameters())
    assert "log_temperature" not in dict(fixed.named_parameters())
    assert set(fixed.state_dict()) == set(learned.state_dict())  # checkpoints keep one layout
    model = create_model(ModelSpec(image_encoder="resnet18", alignments=["global", "part"], embed_dim=16,
                                   num_parts=3, vocab_size=9, num_classes=3, rga_temperature="fixed"))
    assert float(model.alignments["part"].temperature) == 1.0


def test_cuda_and_cpu_forms_of_stripe_pooling_agree_with_a_direct_computation():
    """The CUDA branch (few kernels) never runs in CI: check both forms here, on the CPU,
    against the literal softmax, weighted sum and cosine, with logits large enough that a
    softmax without its shift would overflow."""
    from mia.core.runtime import attention

    g = torch.Generator().manual_seed(1)
    queries = torch.randn(3, 4, D, generator=g)  # [T, M, D]
    parts = torch.randn(7, K, D, generator=g)  # [I, K, D]
    logits = 100.0 * torch.randn(3, 4, K, 7, generator=g)  # [T, M, K, I]
    attention_weights = torch.softmax(logits, dim=2)
    pooled = torch.einsum("tmki,ikd->tmid", attention_weights, parts)  # sum_k a_k v_k, materialised
    direct = cos(queries[:, :, None, :], pooled)  # [T, M, I]
    columns, log_norm, gram = attention.stripe_state(parts)
    cosines = (F.normalize(queries, dim=-1).reshape(-1, D) @ columns).view(3, 4, K, 7)
    for form in (attention._stripe_pool_batched, attention._stripe_pool_unrolled):
        assert torch.allclose(form(logits, cosines, log_norm, gram), direct, atol=1e-5)
