from dataclasses import asdict, replace

from tools.lab.bench.model_only import (
    END,
    MARKERS,
    START,
    BenchSetting,
    default_grid,
    describe_clips,
    markdown_section,
    measure_setting,
    notes,
    ratios,
    render_table,
    token_agreement,
    with_agreement,
    write_section,
)


def test_measure_fp32_and_int8_and_report_agreement(model_config, make_clip, tmp_path):
    clips = [make_clip(i) for i in range(3)]
    fp32 = measure_setting(BenchSetting("tiny", 2, "none", "score", False, 1), model_config, 4,
                           clips)
    int8 = measure_setting(BenchSetting("tiny", 2, "int8", "score", False, 1), model_config, 4,
                           clips)
    assert fp32.videos == 4 and fp32.videos_per_s > 0 and fp32.peak_rss_mb > 0
    assert fp32.latency_p95_s >= fp32.latency_p50_s > 0 and fp32.synthetic is True
    records = [with_agreement(r, [fp32, int8]) for r in (fp32, int8)]
    agreement = records[1].agreement
    assert agreement["vs"] == "fp32" and 0 < agreement["score_abs_diff_max"] < 10
    assert agreement["memory_ratio"] < 0.8 and records[0].agreement == {}
    assert all(r.samples == {} for r in records)
    assert "tiny b2 int8 score r1" in render_table(records)
    # No batch-8 reference cell here: no ratios, only the note on reading the memory columns.
    assert ratios(records) == [] and [n[:8] for n in notes(records)] == ["Peak RSS"]


def test_generate_records_count_tokens(model_config, make_clip):
    setting = BenchSetting("tiny", 2, "none", "generate", True, 1)
    record = measure_setting(setting, model_config.with_changes(max_new_tokens=16), 2,
                             [make_clip(5), make_clip(6)])
    assert 0 < record.tokens_generated <= 2 * 16 and record.tokens_per_s > 0
    assert len(record.samples["tokens"]) == 2


def test_token_agreement():
    assert token_agreement([[1, 2, 3], [4, 5]], [[1, 2, 9], [4, 5]]) == {
        "token_agreement": round((2 / 3 + 1) / 2, 3), "exact_sequences": 0.5}


def test_section_is_replaced_in_place_and_other_content_kept(tmp_path, model_config, make_clip):
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\n<!-- e2e -->other section\n")
    record = measure_setting(BenchSetting("tiny", 1, "none", "score", False, 1), model_config, 1,
                             [make_clip(1)])
    info = {"cpu": "test cpu", "cores": 2, "torch": "x", "python": "3",
            "load_average_at_start": [1.0]}
    write_section(path, markdown_section([record], info, "modfleet bench --model-only"))
    write_section(path, markdown_section([record], info, "modfleet bench --model-only --json"))
    text = path.read_text()
    assert text.count(START) == 1 and text.count(END) == 1 and "other section" in text
    assert "--json`" in text and "Synthetic weights" in text and "test cpu, 2 cores" in text


def _gpu_grid(record):
    """The default grid's cells as CUDA records, with figures chosen so each ratio is known."""
    speed = {(8, "none", "score", False, 1): 40.0, (1, "none", "score", False, 1): 10.0,
             (8, "int8", "score", False, 1): 20.0, (8, "none", "generate", False, 1): 4.0,
             (8, "none", "generate", True, 1): 8.0, (8, "int8", "generate", True, 1): 6.0,
             (8, "none", "score", False, 2): 60.0}
    records = []
    for cell in default_grid("base"):
        key = (cell.batch_size, cell.quantize, cell.mode, cell.ngram_filter, cell.replicas)
        int8 = cell.quantize == "int8"
        records.append(replace(record, **vars(cell), device="cuda:0", videos_per_s=speed[key],
                               weights_mb=2500.0 if int8 else 4500.0,
                               gpu_peak_mb=3000.0 if int8 else 5000.0,
                               tokens_generated=100 if cell.ngram_filter else 400,
                               samples=({"scores": [[50.0, 60.0]] if int8 else [[52.0, 61.0]]}
                                        if cell.mode == "score" else
                                        {"tokens": [[1, 2, 3, 4]] if int8 else [[1, 2, 5, 6]]})))
    return [with_agreement(r, records) for r in records]


def test_gpu_records_fill_their_own_section_beside_the_cpu_one(tmp_path, model_config,
                                                               make_clip):
    path = tmp_path / "BENCHMARKS.md"
    record = measure_setting(BenchSetting("tiny", 1, "none", "score", False, 1), model_config, 1,
                             [make_clip(1)])
    cpu_info = {"cpu": "test cpu", "cores": 2, "torch": "x", "python": "3",
                "load_average_at_start": [1.0]}
    gpu_info = {**cpu_info, "gpu": "Test GPU 80GB", "clips": "4 fixed-seed noise clips"}
    gpu = _gpu_grid(record)
    write_section(path, markdown_section([record], cpu_info, "modfleet bench --model-only"))
    for _ in range(2):
        write_section(path, markdown_section(gpu, gpu_info, "modfleet bench --device cuda"))
    text = path.read_text()
    cuda_start, cuda_end = MARKERS["cuda"]
    assert text.count(START) == 1 and text.count(cuda_start) == 1 and text.count(cuda_end) == 1
    cpu_part = text[text.index(START):text.index(END)]
    cuda_part = text[text.index(cuda_start):text.index(cuda_end)]
    assert "GPU peak MB" in cuda_part and "GPU peak MB" not in cpu_part
    assert "GPU Test GPU 80GB" in cuda_part and "Clips: 4 fixed-seed noise clips." in cuda_part
    assert "| base b8 int8 score r1 | 20.00 |" in cuda_part and "| 3000 |" in cuda_part
    assert "- base: batch 8 vs batch 1 (videos/s): 4.00x" in cuda_part
    assert "- base: int8 vs bf16, score (GPU peak MB): 0.60x" in cuda_part
    said = notes(gpu)
    assert said[0].startswith("base: batch 8 gives 4.00x the videos/s of batch 1")
    assert any("int8 weight-only (torchao) gives 0.50x" in n and "at 0.56x" in n for n in said)
    assert any("cut generated tokens to 0.25x and changed videos/s by 2.00x" in n for n in said)
    assert any("2 replicas on one GPU give 1.50x" in n for n in said)
    assert gpu[2].agreement == {"vs": "bf16", "score_abs_diff_mean": 1.5,
                                "score_abs_diff_max": 2.0, "memory_ratio": 0.556}
    assert any("int8 moved the scores by 1.5 points on average (at most 2.0)" in n
               and "(token agreement 0.5)" in n for n in said)
    assert not any("CPU" in n for n in said)
    # A second replica that does not pay: the host side is named as the limit, with its figure.
    flat = [replace(r, videos_per_s=41.0, cpu_s_per_video=0.05) if r.replicas == 2 else
            replace(r, cpu_s_per_video=0.05) for r in gpu]
    assert any("2 replicas on one GPU give 1.02x" in n and "used 2.0 CPU seconds per second" in n
               for n in notes(flat))


def test_clip_description_says_what_is_real_and_what_is_noise(model_config, make_clip):
    clips = [make_clip(1), replace(make_clip(2), ref="noise-1")]
    assert describe_clips(clips, model_config) == (
        f"1 real sample videos (clip-1) and 1 fixed-seed noise clips, "
        f"{model_config.frames_per_video} frames of {model_config.frame_size}x"
        f"{model_config.frame_size} each, sampled once and reused")


def test_a_neuron_score_cell_reports_its_device_to_host_bytes_on_the_fakes(monkeypatch, tmp_path,
                                                                           make_clip):
    """The model bench on the Neuron SDK's contract fakes (tests/neuron_fakes, importable here and
    in the processes the bench spawns): a score cell's record carries the logits bytes each batch
    brings from the device, as the backend's replica process measured them."""
    import importlib
    import sys
    from pathlib import Path

    from model.config import ModelConfig

    fakes = Path(__file__).resolve().parents[1] / "neuron_fakes"
    monkeypatch.syspath_prepend(str(fakes))
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "0-1")
    monkeypatch.setenv("MODFLEET_FAKE_NEURON_DIR", str(tmp_path / "neuron-devices"))
    importlib.invalidate_caches()
    try:
        base = ModelConfig(backend="neuron", synthetic_arch="llava_next_video",
                           cache_dir=tmp_path / "cache", frames_per_video=4, frame_size=56,
                           tp_degree=1, compiled_dir=tmp_path / "unused")  # the bench compiles
        record = measure_setting(BenchSetting("tiny", 2, "none", "score", False, 1), base, 2,
                                 [make_clip(1), make_clip(2)])
    finally:
        for name in [n for n in sys.modules if n.split(".")[0] in (
                "torch_neuronx", "transformers_neuronx", "neuronxcc", "fake_nrt")]:
            del sys.modules[name]
    assert record.videos == 2 and record.videos_per_s > 0
    # bf16 logits of every prompt position for both rows: a whole multiple of 2 rows x 2 bytes.
    assert record.score_d2h_bytes_per_batch > 0 and record.score_d2h_bytes_per_batch % 4 == 0
    assert asdict(record)["score_d2h_bytes_per_batch"] == record.score_d2h_bytes_per_batch
