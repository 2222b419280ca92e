import numpy as np
import pytest

from model.checkpoints import synthetic_path
from model.exceptions import RejectClip
from model.preprocess import VideoPreprocessor


@pytest.fixture()
def pre(model_cache):
    return VideoPreprocessor.from_checkpoint(synthetic_path(model_cache, "tiny"))


def test_grid_and_token_count_follow_qwen2_vl(pre):
    # 8 frames of 224 px: 4 temporal patches of 16 x 16 patches, merged 2 x 2 into 256 tokens.
    assert pre.grid(8, 224) == (4, 16, 16)
    assert pre.tokens_per_clip(8, 224) == 256
    assert pre.grid(3, 56) == (2, 4, 4)  # odd frame counts repeat the last frame


def test_patch_holds_the_normalized_pixels_of_its_place(pre):
    frames = np.random.default_rng(1).integers(0, 256, (2, 56, 56, 3), dtype=np.uint8)
    pixels, grid = pre([frames, frames])
    assert grid.tolist() == [[1, 4, 4], [1, 4, 4]]
    assert tuple(pixels.shape) == (32, 3 * 2 * 14 * 14)
    # Patch order is (merge block row, merge block col, row in block, col in block): the second
    # patch is the top-left block's top-right patch, i.e. pixel columns 14-27 of rows 0-13.
    patch = pixels[1].view(3, 2, 14, 14)
    expected = (frames[0, 0:14, 14:28, 0] / 255 - pre.mean[0]) / pre.std[0]
    assert np.allclose(patch[0, 0].numpy(), expected, atol=1e-5)


def test_matches_the_transformers_qwen2_vl_image_processor(pre, model_cache):
    # A still image is a two-frame clip to Qwen2-VL (the processor repeats it in time), so the
    # transformers processor that needs no torchvision checks our patch layout and normalisation.
    from transformers import AutoImageProcessor

    processor = AutoImageProcessor.from_pretrained(synthetic_path(model_cache, "tiny"),
                                                   backend="pil")
    image = np.random.default_rng(2).integers(0, 256, (56, 56, 3), dtype=np.uint8)
    theirs = processor(images=[image], return_tensors="pt")
    ours, grid = pre([np.stack([image, image])])
    assert grid.tolist() == theirs["image_grid_thw"].tolist()
    assert np.allclose(ours.numpy(), theirs["pixel_values"].numpy(), atol=1e-5)


def test_non_square_or_unaligned_frames_are_rejected(pre):
    with pytest.raises(RejectClip, match="multiple of 28"):
        pre([np.zeros((2, 50, 50, 3), np.uint8)])
