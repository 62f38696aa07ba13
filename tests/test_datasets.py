import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from conftest import write_pedes
from mia.cli.main import cli
from mia.core.data.loaders import ImageReader
from mia.core.runtime.policy import prepare_images
from mia.core.base.errors import MiaError
from mia.core.data.preprocess import load_image_array
from mia.core.data.records import load_dataset, parse_data_spec


def cuhk_entries():
    return [
        {"split": "train", "captions": ["A man in a red coat.", "He wears a red coat and black jeans."],
         "file_path": "cam_a/0001.jpg", "processed_tokens": [["a"], ["he"]], "id": 1},
        {"split": "val", "captions": ["A woman with a blue bag."], "file_path": "cam_b/0002.jpg",
         "processed_tokens": [["a"]], "id": 2},
        {"split": "test", "captions": ["A girl in a yellow dress.", "   "], "file_path": "cam_a/0003.jpg",
         "processed_tokens": [["a"], []], "id": 3},
    ]


def test_cuhk_pedes_reads_the_real_format(tmp_path):
    root = write_pedes(tmp_path / "CUHK-PEDES", "reid_raw.json", cuhk_entries())
    dataset = load_dataset(f"cuhk-pedes:{root}")
    assert [r.person_id for r in dataset.records] == [1, 2, 3]
    assert dataset.split("train")[0].captions == ("A man in a red coat.", "He wears a red coat and black jeans.")
    assert dataset.split("test")[0].image == root / "imgs" / "cam_a" / "0003.jpg"
    assert dataset.notes[0] == "skipped 1 empty caption(s)"
    # named as CUHK-PEDES, it is held to the published sizes: one line per split that differs
    assert dataset.notes[1:] == [
        "cuhk-pedes train holds 1 identity, 1 image, 2 captions; published: 11,003 identities, 34,054 images, "
        "68,126 captions", "cuhk-pedes val holds 1 identity, 1 image, 1 caption; published: 1,000 identities, "
        "3,078 images, 6,158 captions", "cuhk-pedes test holds 1 identity, 1 image, 1 caption; published: 1,000 "
        "identities, 3,074 images, 6,156 captions"]
    assert dataset.eval_split() == "val"


def test_icfg_and_rstp_formats(tmp_path):
    icfg = [{"split": "train", "captions": ["a man"], "file_path": "train/0001/a.jpg", "processed_tokens": [], "id": 7},
            {"split": "test", "captions": ["a woman"], "file_path": "test/0002/b.jpg", "processed_tokens": [], "id": 9}]
    root = write_pedes(tmp_path / "ICFG", "ICFG-PEDES.json", icfg)
    dataset = load_dataset(str(root))  # detected from the annotation file
    assert dataset.name == "icfg-pedes" and dataset.eval_split() == "test"
    rstp = [{"id": 3, "img_path": "3_1.jpg", "captions": ["a person", "someone"], "split": "train"},
            {"id": "4", "img_path": "4_1.jpg", "captions": ["another person"], "split": "test"}]
    root = write_pedes(tmp_path / "RSTP", "data_captions.json", rstp, image_field="img_path")
    dataset = load_dataset(str(root / "data_captions.json"))
    assert dataset.name == "rstpreid" and [r.person_id for r in dataset.records] == [3, 4]


@pytest.mark.parametrize("content, message", [
    ("{not json", r"reid_raw.json: not valid JSON \(line 1, column 2"),
    ('{"a": 1}', "expected a JSON list of entries, got dict"),
    ('[{"split": "train", "captions": ["x"], "id": 1}]', "entry 0: missing field 'file_path'"),
    ('[{"split": "train", "captions": ["x"], "file_path": "a.jpg", "id": "seven"}]', "entry 0: field 'id' must be an integer from 0 to 9223372036854775807, got 'seven'"),
    ('[{"split": "train", "captions": ["x"], "file_path": "a.jpg", "id": 1.5}]', "field 'id' must be an integer from 0 to 9223372036854775807, got 1.5"),
    ('[{"split": "dev", "captions": ["x"], "file_path": "a.jpg", "id": 1}]', "field 'split' must be one of train, val, test, got 'dev'"),
    ('[{"split": "train", "captions": "x", "file_path": "a.jpg", "id": 1}]', "field 'captions' must be a list of strings"),
    ('[3]', "entry 0: expected an object, got int"),
])
def test_malformed_annotation_is_a_one_line_error(tmp_path, content, message):
    (tmp_path / "reid_raw.json").write_text(content)
    with pytest.raises(MiaError, match=message) as info:
        load_dataset(f"cuhk-pedes:{tmp_path}")
    assert "\n" not in str(info.value)


def test_missing_and_corrupt_images_are_counted_and_named(tmp_path):
    entries = [{"split": "train", "captions": ["a man"], "file_path": f"{i}.jpg", "processed_tokens": [], "id": i}
               for i in range(1, 8)]
    root = write_pedes(tmp_path, "reid_raw.json", entries)
    for i in (2, 3, 4, 5):
        (root / "imgs" / f"{i}.jpg").unlink()
    (root / "imgs" / "6.jpg").write_bytes(b"not an image at all")
    data = (root / "imgs" / "7.jpg").read_bytes()
    (root / "imgs" / "7.jpg").write_bytes(data[: len(data) // 2])  # truncated JPEG
    dataset = load_dataset(f"cuhk-pedes:{root}")
    assert [r.person_id for r in dataset.records] == [1]
    missing, corrupt = dataset.notes[:2]  # then the sizes against CUHK-PEDES's published ones
    assert missing.startswith("skipped 4 missing image file(s) (") and missing.endswith(", ...)")
    assert "2.jpg" in missing
    assert corrupt.startswith("skipped 2 unreadable image file(s)") and "6.jpg" in corrupt and "7.jpg" in corrupt


def test_all_images_missing_is_an_error(tmp_path):
    (tmp_path / "reid_raw.json").write_text(json.dumps(cuhk_entries()))
    with pytest.raises(MiaError, match="has no usable records .*skipped 3 missing image file"):
        load_dataset(f"cuhk-pedes:{tmp_path}")


def test_data_spec_errors(tmp_path):
    with pytest.raises(MiaError, match="neither a data set name .* nor an existing path"):
        parse_data_spec(str(tmp_path / "nope"))
    with pytest.raises(MiaError, match="no data set recognises this path"):
        parse_data_spec(str(tmp_path))
    with pytest.raises(MiaError, match="--data cuhk-pedes needs a path"):
        load_dataset("cuhk-pedes")
    with pytest.raises(MiaError, match="annotation file not found"):
        load_dataset(f"rstpreid:{tmp_path}")


def test_missing_split_names_the_ones_present(tmp_path):
    root = write_pedes(tmp_path, "reid_raw.json", cuhk_entries()[:1])
    with pytest.raises(MiaError, match="has no 'test' split; it has: train"):
        load_dataset(str(root)).split("test")


@pytest.mark.parametrize("mode, fmt", [("L", "PNG"), ("RGBA", "PNG"), ("P", "PNG"), ("I;16", "PNG"), ("CMYK", "JPEG"), ("RGB", "WEBP")])
def test_any_image_mode_becomes_normalised_rgb(tmp_path, mode, fmt):
    path = tmp_path / f"img.{fmt.lower()}"
    image = Image.new("RGB", (37, 91), (250, 10, 10)).convert(mode) if mode != "I;16" else Image.new("I;16", (37, 91), 3000)
    image.save(path, format=fmt)
    array = load_image_array(path, (64, 32))
    assert array.shape == (3, 64, 32) and array.dtype == np.float32 and np.isfinite(array).all()


def test_training_side_preprocessing_equals_the_deployed_runtimes_bit_for_bit(tmp_path):
    path = tmp_path / "crop.jpg"
    Image.effect_noise((41, 97), 60).convert("RGB").save(path)
    pixels = ImageReader((64, 32), seed=0, train=False)(path, epoch=0, index=0)
    assert pixels.dtype == torch.uint8 and pixels.shape == (3, 64, 32)  # workers ship bytes
    model_input = prepare_images(pixels[None], torch.device("cpu"))[0].numpy()
    assert np.array_equal(model_input, load_image_array(path, (64, 32)))


def test_data_info_command(tmp_path):
    root = write_pedes(tmp_path, "reid_raw.json", cuhk_entries())
    result = CliRunner().invoke(cli, ["data", "info", str(root)])
    assert result.exit_code == 0, result.output
    assert "train: 1 identities, 1 images, 2 captions" in result.output
    assert "note: skipped 1 empty caption(s)" in result.output

